package cloudevent

import (
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/eventgate/eventgate/protos/gateways"
)

func TestFrom(t *testing.T) {
	gw := Gateway{Name: "calendar-gateway", Type: "calendar"}
	received := time.Date(2026, 11, 26, 7, 0, 0, 0, time.UTC)
	at := time.Date(2026, 11, 26, 6, 59, 0, 0, time.UTC)
	tests := []struct {
		name            string
		in              *gateways.Event
		wantID          string // "" means generated
		wantTime        time.Time
		wantContentType string
		wantExtensions  map[string]string
	}{
		{
			name:     "v0.10 event: only name and JSON payload",
			in:       &gateways.Event{Name: "every-minute", Payload: []byte(`{"eventTime":"x"}`)},
			wantTime: received, wantContentType: "application/json",
		},
		{
			name:     "v0.10 event with a text payload",
			in:       &gateways.Event{Name: "hook", Payload: []byte("hello")},
			wantTime: received, wantContentType: "application/octet-stream",
		},
		{
			name: "eventgate event: id, time, content type and metadata",
			in: &gateways.Event{Name: "orders", Payload: []byte("a,b"), Id: "evt-1", Time: timestamppb.New(at),
				ContentType: "text/csv", Metadata: map[string]string{"Topic": "orders", "kafka.partition": "3", "id": "shadow", "--": "x"}},
			wantID: "evt-1", wantTime: at, wantContentType: "text/csv",
			wantExtensions: map[string]string{"topic": "orders", "kafkapartition": "3"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ce, err := From(gw, tc.in, received)
			if err != nil {
				t.Fatal(err)
			}
			if ce.SpecVersion() != "1.0" || ce.Source() != "calendar-gateway" || ce.Type() != "calendar" || ce.Subject() != tc.in.GetName() {
				t.Errorf("attributes: %s", ce)
			}
			if tc.wantID != "" && ce.ID() != tc.wantID || ce.ID() == "" {
				t.Errorf("id = %q, want %q", ce.ID(), tc.wantID)
			}
			if !ce.Time().Equal(tc.wantTime) {
				t.Errorf("time = %v, want %v", ce.Time(), tc.wantTime)
			}
			if ce.DataContentType() != tc.wantContentType || string(ce.Data()) != string(tc.in.GetPayload()) {
				t.Errorf("data %q (%s), want %q (%s)", ce.Data(), ce.DataContentType(), tc.in.GetPayload(), tc.wantContentType)
			}
			if len(ce.Extensions()) != len(tc.wantExtensions) {
				t.Errorf("extensions = %v, want %v", ce.Extensions(), tc.wantExtensions)
			}
			for k, v := range tc.wantExtensions {
				if got, _ := ce.Extensions()[k].(string); got != v {
					t.Errorf("extension %s = %v, want %s", k, ce.Extensions()[k], v)
				}
			}
		})
	}
}

func TestFromGivesUniqueIDs(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		ce, err := From(Gateway{Name: "g", Type: "t"}, &gateways.Event{Name: "s"}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if seen[ce.ID()] {
			t.Fatalf("id %s repeated", ce.ID())
		}
		seen[ce.ID()] = true
	}
}
