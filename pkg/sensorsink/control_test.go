package sensorsink_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/protocol"

	"github.com/eventgate/eventgate/pkg/sensorsink"
	"github.com/eventgate/eventgate/pkg/testenv"
)

func TestControl(t *testing.T) {
	sink := testenv.StartSensor(t, sensorsink.Endpoints{})
	// Steps run in order against one sink: each starts from the state the last one left.
	for _, step := range []struct {
		name, method, path, body string
		wantStatus               int
		wantBody                 string
		wantMode                 sensorsink.Mode
		wantFailFirst            int
	}{
		{"health", "GET", "healthz", "", 200, "ok\n", sensorsink.ModeOK, 0},
		{"read mode", "GET", "control/mode", "", 200, "ok\n", sensorsink.ModeOK, 0},
		{"PUT mode in the body", "PUT", "control/mode", "fail\n", 200, "fail\n", sensorsink.ModeFail, 0},
		{"POST mode in the query", "POST", "control/mode?mode=stall", "", 200, "stall\n", sensorsink.ModeStall, 0},
		{"POST mode in the body", "POST", "control/mode", "OK", 200, "ok\n", sensorsink.ModeOK, 0},
		{"bad mode changes nothing", "PUT", "control/mode", "broken", 400, "mode: \"broken\" is not ok, fail or stall\n", sensorsink.ModeOK, 0},
		{"PUT fail-first", "PUT", "control/fail-first", "3", 200, "3\n", sensorsink.ModeOK, 3},
		{"read fail-first", "GET", "control/fail-first", "", 200, "3\n", sensorsink.ModeOK, 3},
		{"POST fail-first in the query", "POST", "control/fail-first?n=0", "", 200, "0\n", sensorsink.ModeOK, 0},
		{"bad fail-first", "PUT", "control/fail-first", "-1", 400, "fail-first: \"-1\" is not a count\n", sensorsink.ModeOK, 0},
		{"unknown control path", "GET", "control/nothing", "", 405, "Method Not Allowed\n", sensorsink.ModeOK, 0},
	} {
		t.Run(step.name, func(t *testing.T) {
			status, body := control(t, step.method, sink.URL+step.path, step.body)
			if status != step.wantStatus || body != step.wantBody {
				t.Errorf("got %d %q, want %d %q", status, body, step.wantStatus, step.wantBody)
			}
			if got := sink.Mode(); got != step.wantMode {
				t.Errorf("mode %q, want %q", got, step.wantMode)
			}
			if got := sink.FailFirst(); got != step.wantFailFirst {
				t.Errorf("fail-first %d, want %d", got, step.wantFailFirst)
			}
		})
	}
}

// The control endpoints are how a test that runs the sensor as a process sees what it got.
func TestControlEventsAndStats(t *testing.T) {
	sink := testenv.StartSensor(t, sensorsink.Endpoints{}, sensorsink.WithFailFirst(1))
	sender := httpSender(t, sink.URL, false)
	sent := []event.Event{newEvent("refused"), newEvent("a"), newEvent("b")}
	if err := sent[2].SetData("application/octet-stream", []byte{0xff, 0}); err != nil {
		t.Fatal(err)
	}
	for _, e := range sent {
		sender.Send(t.Context(), e)
	}

	t.Run("events", func(t *testing.T) {
		status, body := control(t, "GET", sink.URL+"control/events", "")
		var got []event.Event
		if err := json.Unmarshal([]byte(body), &got); status != 200 || err != nil {
			t.Fatalf("GET /control/events: %d %v %s", status, err, body)
		}
		if len(got) != 2 || got[0].ID() != "a" || got[1].ID() != "b" || string(got[1].Data()) != "\xff\x00" {
			t.Errorf("events %v, want a, then b with its bytes", got)
		}
	})
	t.Run("stats", func(t *testing.T) {
		status, body := control(t, "GET", sink.URL+"control/stats", "")
		if want := `{"accepted":2,"rejected":1,"abandoned":0,"malformed":0,"held":0}` + "\n"; status != 200 || body != want {
			t.Errorf("GET /control/stats: %d %q, want %q", status, body, want)
		}
	})
	t.Run("reset", func(t *testing.T) {
		if status, _ := control(t, "DELETE", sink.URL+"control/events", ""); status != http.StatusNoContent {
			t.Errorf("DELETE /control/events: %d", status)
		}
		if _, body := control(t, "GET", sink.URL+"control/events", ""); body != "[]\n" {
			t.Errorf("events after reset: %s", body)
		}
		if res := sender.Send(t.Context(), newEvent("c")); !protocol.IsACK(res) {
			t.Fatal(res)
		}
		if _, body := control(t, "GET", sink.URL+"control/stats", ""); body != `{"accepted":3,"rejected":1,"abandoned":0,"malformed":0,"held":0}`+"\n" {
			t.Errorf("stats after reset: %s", body)
		}
	})
}

func TestKeepBoundsWhatIsKept(t *testing.T) {
	sink := testenv.StartSensor(t, sensorsink.Endpoints{}, sensorsink.WithKeep(2))
	sender := httpSender(t, sink.URL, false)
	// Five: past the trim at twice keep, and one more.
	for _, id := range []string{"1", "2", "3", "4", "5"} {
		if res := sender.Send(t.Context(), newEvent(id)); !protocol.IsACK(res) {
			t.Fatal(res)
		}
	}
	got := sink.Received()
	if len(got) != 2 || got[0].ID() != "4" || got[1].ID() != "5" {
		t.Errorf("kept %v, want the last two", got)
	}
	if n := sink.Stats().Accepted; n != 5 {
		t.Errorf("accepted %d, want 5", n)
	}
}
