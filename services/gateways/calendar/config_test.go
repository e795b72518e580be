package main

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/eventgate/eventgate/pkg/config"
)

var testNow = time.Date(2026, 11, 26, 6, 0, 0, 0, time.UTC)

func TestConfigValidation(t *testing.T) {
	tests := []struct {
		name, data string
		wantErr    string // empty: valid
	}{
		{name: "interval", data: "interval: 10s"},
		{name: "schedule", data: "schedule: 30 * * * *"},
		{name: "descriptor", data: "schedule: '@hourly'"},
		{name: "schedule and interval", data: "schedule: 0 9 * * *\ninterval: 1h"},
		{name: "v0.10 recurrence", data: "schedule: 0 9 * * *\nrecurrence:\n  - EXDATE:20261225T090000Z,20261226T090000Z\n  - RRULE:FREQ=DAILY"},
		{name: "exdate date-only and floating", data: "interval: 1h\nrecurrence: ['EXDATE:20261225', 'EXDATE:20261226T100000']"},
		{name: "exclusionDates", data: "interval: 1h\nexclusionDates: ['2026-12-25', '2026-12-31T00:00:00+01:00']"},
		{name: "timezone", data: "schedule: 0 9 * * *\ntimezone: Asia/Kolkata"},
		{name: "JSON payload as a string", data: "interval: 1s\nuserPayload: \"{\\\"hello\\\": \\\"world\\\"}\""},
		{name: "structured payload", data: "interval: 1s\nuserPayload: {hello: world, n: 1}"},

		{name: "neither schedule nor interval", data: "timezone: UTC", wantErr: "calendar: one of schedule or interval is required"},
		{name: "three cron fields", data: "schedule: 0 9 *", wantErr: `calendar.schedule: "0 9 *" is not a 5-field cron expression: expected exactly 5 fields, found 3: [0 9 *]`},
		{name: "seconds field", data: "schedule: 0 0 9 * * *", wantErr: `calendar.schedule: "0 0 9 * * *" is not a 5-field cron expression`},
		{name: "out of range", data: "schedule: 61 * * * *", wantErr: `calendar.schedule: "61 * * * *" is not a 5-field cron expression: end of range (61) above maximum (59): 61`},
		{name: "impossible date", data: "schedule: 0 0 30 2 *", wantErr: `calendar.schedule: "0 0 30 2 *" never fires`},
		{name: "negative interval", data: "interval: -5s", wantErr: "calendar.interval: must be positive, got -5s"},
		{name: "zero interval", data: "interval: 0s", wantErr: "calendar.interval: must be positive, got 0s"},
		{name: "interval without unit", data: "interval: 10", wantErr: `calendar.interval: "10" is not a duration such as 10s or 1m30s`},
		{name: "unknown timezone", data: "interval: 1s\ntimezone: Mars/Olympus", wantErr: `calendar.timezone: unknown time zone "Mars/Olympus"`},
		{name: "bad EXDATE", data: "interval: 1s\nrecurrence: ['EXDATE:2026-12-25']", wantErr: `calendar.recurrence[0]: "2026-12-25" is not a date such as 20060102T150405Z or 20060102`},
		{name: "bad exclusion date", data: "interval: 1s\nexclusionDates: ['2026-12-25', 'christmas']", wantErr: `calendar.exclusionDates[1]: "christmas" is not a date such as 2006-01-02`},
		{name: "unknown field", data: "intreval: 1s", wantErr: `calendar: invalid configuration: unknown field "intreval"`},
		{name: "malformed YAML", data: "interval: [1s", wantErr: "calendar: invalid configuration: yaml: "},
		{name: "not a mapping", data: "just a string", wantErr: "calendar: invalid configuration: "},
		{
			name:    "every problem at once",
			data:    "interval: -1s\ntimezone: Nowhere\nexclusionDates: [x]",
			wantErr: `calendar.timezone: unknown time zone "Nowhere"; calendar.interval: must be positive, got -1s; calendar.exclusionDates[0]: "x" is not a date such as 2006-01-02`,
		},
	}
	gw := gateway{clock: wallClock{}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := gw.Parse(tc.name, tc.data)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				return
			}
			if err == nil || !strings.HasPrefix(err.Error(), tc.wantErr) {
				t.Fatalf("Parse error = %v, want prefix %q", err, tc.wantErr)
			}
		})
	}
}

// The shipped example must stay valid: it is what users copy.
func TestExampleEventSourcesAreValid(t *testing.T) {
	manifest, err := os.ReadFile("../../../deploy/examples/calendar/event-source.yaml")
	if err != nil {
		t.Fatal(err)
	}
	sources, err := config.ConfigMapData(manifest)
	if err != nil {
		t.Fatal(err)
	}
	if len(sources) < 5 {
		t.Fatalf("example has %d event sources, want at least 5", len(sources))
	}
	for name, data := range sources {
		if _, err := (gateway{clock: wallClock{}}).Parse(name, data); err != nil {
			t.Errorf("example %q: %v", name, err)
		}
	}
}
