package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/eventgate/eventgate/pkg/testenv"
	"github.com/eventgate/eventgate/protos/gateways"
)

// fakeClock jumps to whatever time the source waits for: a test walks through days of a
// schedule in microseconds. Only time is faked; the server and stream are real.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) WaitUntil(ctx context.Context, t time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.After(c.now) {
		c.now = t
	}
	return nil
}

// receive starts an event source on the gateway server and returns the first n payloads.
func receive(t *testing.T, client gateways.EventingClient, data string, n int) []payload {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	stream, err := client.StartEventSource(ctx, &gateways.EventSource{Name: "test", Data: data})
	if err != nil {
		t.Fatal(err)
	}
	var got []payload
	for len(got) < n {
		ev, err := stream.Recv()
		if err != nil {
			t.Fatalf("after %d events: %v", len(got), err)
		}
		if ev.GetName() != "test" || ev.GetContentType() != "application/json" {
			t.Fatalf("event name %q content type %q", ev.GetName(), ev.GetContentType())
		}
		var p payload
		if err := json.Unmarshal(ev.GetPayload(), &p); err != nil {
			t.Fatalf("payload %q: %v", ev.GetPayload(), err)
		}
		if !ev.GetTime().AsTime().Equal(p.EventTime) {
			t.Errorf("event time %v differs from payload eventTime %v", ev.GetTime().AsTime(), p.EventTime)
		}
		got = append(got, p)
	}
	return got
}

func TestIntervalEventsOverGRPC(t *testing.T) {
	gw := testenv.StartGateway(t, gateway{clock: wallClock{}})
	const interval = 50 * time.Millisecond
	events := receive(t, gw.Client, `{"interval": "50ms", "userPayload": {"hello": "world"}}`, 4)
	for i, ev := range events {
		if string(ev.UserPayload) != `{"hello":"world"}` {
			t.Errorf("event %d userPayload = %s", i, ev.UserPayload)
		}
		if i > 0 {
			if gap := ev.EventTime.Sub(events[i-1].EventTime); gap < interval {
				t.Errorf("event %d came %s after the previous one, want >= %s", i, gap, interval)
			}
		}
	}
}

func TestScheduleTimezoneAndExclusions(t *testing.T) {
	tests := []struct {
		name  string
		start time.Time
		data  string
		want  []string // eventTime as sent (RFC 3339, in the source's zone)
	}{
		{
			name:  "daily in Berlin, v0.10 EXDATE and exclusionDates",
			start: time.Date(2026, 12, 23, 12, 0, 0, 0, time.UTC),
			data: `{schedule: "0 9 * * *", timezone: Europe/Berlin,
			        recurrence: ["EXDATE:20261225T090000Z", "RRULE:FREQ=DAILY"], exclusionDates: ["2026-12-26"]}`,
			want: []string{"2026-12-24T09:00:00+01:00", "2026-12-27T09:00:00+01:00", "2026-12-28T09:00:00+01:00"},
		},
		{
			// 09:00 in Tokyo is 00:00 UTC: the excluded day is Tokyo's, not UTC's.
			name:  "exclusion is the day in the source's zone",
			start: time.Date(2026, 12, 24, 1, 0, 0, 0, time.UTC),
			data:  `{schedule: "0 9 * * *", timezone: Asia/Tokyo, exclusionDates: ["2026-12-26"]}`,
			want:  []string{"2026-12-25T09:00:00+09:00", "2026-12-27T09:00:00+09:00"},
		},
		{
			name:  "daylight saving change in New York",
			start: time.Date(2026, 3, 6, 12, 0, 0, 0, time.UTC),
			data:  `{schedule: "0 8 * * *", timezone: America/New_York}`,
			want:  []string{"2026-03-06T08:00:00-05:00", "2026-03-07T08:00:00-05:00", "2026-03-08T08:00:00-04:00"},
		},
		{
			name:  "schedule wins over interval",
			start: time.Date(2026, 1, 1, 0, 10, 0, 0, time.UTC),
			data:  `{schedule: "30 * * * *", interval: 1s}`,
			want:  []string{"2026-01-01T00:30:00Z", "2026-01-01T01:30:00Z"},
		},
		{
			name:  "interval resumes at midnight after an excluded day",
			start: time.Date(2026, 12, 24, 14, 0, 0, 0, time.UTC),
			data:  `{interval: 6h, exclusionDates: ["2026-12-25"]}`,
			want:  []string{"2026-12-24T20:00:00Z", "2026-12-26T00:00:00Z", "2026-12-26T06:00:00Z"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			gw := testenv.StartGateway(t, gateway{clock: &fakeClock{now: tc.start}})
			events := receive(t, gw.Client, tc.data, len(tc.want))
			for i, ev := range events {
				raw, _ := json.Marshal(ev.EventTime)
				if got := fmt.Sprintf("%s", raw); got != `"`+tc.want[i]+`"` {
					t.Errorf("event %d eventTime = %s, want %q", i, got, tc.want[i])
				}
			}
		})
	}
}

func TestInvalidSourceDoesNotStopOthers(t *testing.T) {
	gw := testenv.StartGateway(t, gateway{clock: wallClock{}})
	resp, err := gw.Client.ValidateEventSource(t.Context(), &gateways.EventSource{Name: "bad", Data: "schedule: 0 0 31 2 *"})
	if err != nil || resp.GetIsValid() || resp.GetReason() != `calendar.schedule: "0 0 31 2 *" never fires` {
		t.Fatalf("validate impossible schedule = %v, %v", resp, err)
	}
	if got := receive(t, gw.Client, "interval: 10ms", 2); len(got) != 2 {
		t.Fatalf("got %d events", len(got))
	}
}
