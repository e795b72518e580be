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
			// Vixie cron's rule: a fixed time that repeats fires at its first occurrence only.
			name:  "fixed time in the hour New York repeats",
			start: time.Date(2026, 10, 31, 12, 0, 0, 0, time.UTC),
			data:  `{schedule: "30 1 * * *", timezone: America/New_York}`,
			want:  []string{"2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00"},
		},
		{
			name:  "fixed time in the hour Berlin repeats",
			start: time.Date(2026, 10, 24, 12, 0, 0, 0, time.UTC),
			data:  `{schedule: "30 2 * * *", timezone: Europe/Berlin}`,
			want:  []string{"2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"},
		},
		{
			// ... and a fixed time that is skipped fires at the first instant after the change.
			name:  "fixed time in the hour New York skips",
			start: time.Date(2026, 3, 7, 12, 0, 0, 0, time.UTC),
			data:  `{schedule: "30 2 * * *", timezone: America/New_York}`,
			want:  []string{"2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00"},
		},
		{
			// Havana's clocks go from 00:00 to 01:00: that day has no midnight.
			name:  "midnight in Havana on the day it is skipped",
			start: time.Date(2026, 3, 7, 12, 0, 0, 0, time.UTC),
			data:  `{schedule: "0 0 * * *", timezone: America/Havana}`,
			want:  []string{"2026-03-08T01:00:00-04:00", "2026-03-09T00:00:00-04:00"},
		},
		{
			// Santiago's clocks go back from 24:00 to 23:00.
			name:  "23:00 in Santiago on the day it repeats",
			start: time.Date(2026, 4, 4, 12, 0, 0, 0, time.UTC),
			data:  `{schedule: "0 23 * * *", timezone: America/Santiago}`,
			want:  []string{"2026-04-04T23:00:00-03:00", "2026-04-05T23:00:00-04:00"},
		},
		{
			// Lord Howe's clocks move by 30 minutes: 02:00 becomes 02:30 in October ...
			name:  "Lord Howe skips half an hour",
			start: time.Date(2026, 10, 3, 12, 0, 0, 0, time.UTC),
			data:  `{schedule: "15 2 * * *", timezone: Australia/Lord_Howe}`,
			want:  []string{"2026-10-04T02:30:00+11:00", "2026-10-05T02:15:00+11:00"},
		},
		{
			// ... and 02:00 becomes 01:30 in April.
			name:  "Lord Howe repeats half an hour",
			start: time.Date(2026, 4, 4, 0, 0, 0, 0, time.UTC),
			data:  `{schedule: "45 1 * * *", timezone: Australia/Lord_Howe}`,
			want:  []string{"2026-04-05T01:45:00+11:00", "2026-04-06T01:45:00+10:30"},
		},
		{
			// A job that runs every hour runs by real time: twice in the repeated hour ...
			name:  "hourly in the hour New York repeats",
			start: time.Date(2026, 11, 1, 4, 0, 0, 0, time.UTC),
			data:  `{schedule: "30 * * * *", timezone: America/New_York}`,
			want:  []string{"2026-11-01T00:30:00-04:00", "2026-11-01T01:30:00-04:00", "2026-11-01T01:30:00-05:00", "2026-11-01T02:30:00-05:00"},
		},
		{
			// ... and not in the skipped one.
			name:  "hourly in the hour New York skips",
			start: time.Date(2026, 3, 8, 6, 0, 0, 0, time.UTC),
			data:  `{schedule: "30 * * * *", timezone: America/New_York}`,
			want:  []string{"2026-03-08T01:30:00-05:00", "2026-03-08T03:30:00-04:00"},
		},
		{
			// A CRON_TZ= prefix sets the schedule's zone; events are still in the source's.
			name:  "CRON_TZ prefix",
			start: time.Date(2026, 1, 1, 0, 10, 0, 0, time.UTC),
			data:  `{schedule: "CRON_TZ=Asia/Tokyo 0 9 * * *"}`,
			want:  []string{"2026-01-02T00:00:00Z", "2026-01-03T00:00:00Z"},
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
		{
			// cron's @every resumed at 05:59:59, and rounded to whole seconds.
			name:  "@every is an interval",
			start: time.Date(2026, 12, 24, 14, 0, 0, 0, time.UTC),
			data:  `{schedule: "@every 6h", exclusionDates: ["2026-12-25"]}`,
			want:  []string{"2026-12-24T20:00:00Z", "2026-12-26T00:00:00Z", "2026-12-26T06:00:00Z"},
		},
		{
			name:  "@every a fraction of a second",
			start: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
			data:  `{schedule: "@every 1500ms"}`,
			want:  []string{"2026-01-01T00:00:01.5Z", "2026-01-01T00:00:03Z", "2026-01-01T00:00:04.5Z"},
		},
		{
			// The day after the excluded one starts at 01:00: Havana skips that midnight.
			name:  "resumes when the next day starts, at 01:00 in Havana",
			start: time.Date(2026, 3, 7, 4, 0, 0, 0, time.UTC),
			data:  `{schedule: "0 * * * *", timezone: America/Havana, exclusionDates: ["2026-03-07"]}`,
			want:  []string{"2026-03-08T01:00:00-04:00", "2026-03-08T02:00:00-04:00"},
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

// clockChangeZones change their clocks in each way zones do: by an hour at 01:00, 02:00 or
// 03:00 (New York, Berlin, London, Sydney), at midnight (Havana, Santiago, Beirut, Cairo), or
// by 30 minutes (Lord Howe).
var clockChangeZones = []string{
	"America/New_York", "Europe/Berlin", "Europe/London", "Australia/Sydney", "America/Havana",
	"America/Santiago", "Asia/Beirut", "Africa/Cairo", "Australia/Lord_Howe",
}

// firings lists the times cfg fires from start until end, walking the plan directly: a year
// of firings needs no server.
func firings(t *testing.T, cfg Config, start, end time.Time) []time.Time {
	t.Helper()
	p, err := cfg.compile(start)
	if err != nil {
		t.Fatal(err)
	}
	s := &source{plan: p}
	var got []time.Time
	for at := s.nextFiring(start.In(p.location)); at.Before(end); at = s.nextFiring(at) {
		got = append(got, at)
	}
	return got
}

// A job at a fixed time of day fires once a day, on the days the clocks change too: at its
// time, or, when the clocks skipped it, at the instant they changed.
func TestFixedTimeFiresOncePerDay(t *testing.T) {
	start, end := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2028, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, zone := range clockChangeZones {
		for _, schedule := range []string{"0 0 * * *", "30 0 * * *", "30 1 * * *", "15 2 * * *", "0 23 * * *"} {
			t.Run(zone+" "+schedule, func(t *testing.T) {
				got := firings(t, Config{Schedule: schedule, Timezone: zone}, start, end)
				if len(got) == 0 {
					t.Fatal("never fired")
				}
				want := dateOf(got[0])
				for _, at := range got {
					if dateOf(at) != want {
						t.Fatalf("fired at %s, want one firing on %v", at.Format(time.RFC3339), want)
					}
					shows := fmt.Sprintf("%d %d * * *", at.Minute(), at.Hour())
					if changed, _ := at.ZoneBounds(); shows != schedule && !changed.Equal(at) {
						t.Errorf("fired at %s: neither the scheduled time nor a clock change", at.Format(time.RFC3339))
					}
					y, m, d := at.Date()
					want = dateOf(time.Date(y, m, d+1, 0, 0, 0, 0, time.UTC))
				}
			})
		}
	}
}

// A job that runs every hour fires every real hour, whatever the clocks do.
func TestHourlyFiresEveryRealHour(t *testing.T) {
	start, end := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, zone := range clockChangeZones {
		if zone == "Australia/Lord_Howe" { // its clocks move by half an hour
			continue
		}
		t.Run(zone, func(t *testing.T) {
			got := firings(t, Config{Schedule: "30 * * * *", Timezone: zone}, start, end)
			for i := 1; i < len(got); i++ {
				if gap := got[i].Sub(got[i-1]); gap != time.Hour {
					t.Fatalf("fired at %s, then %s later", got[i-1].Format(time.RFC3339), gap)
				}
			}
		})
	}
}
