package main

import (
	"os"
	"testing"
	"time"

	"github.com/eventgate/eventgate/pkg/config"
	"github.com/eventgate/eventgate/pkg/testenv"
)

var testNow = time.Date(2026, 11, 26, 6, 0, 0, 0, time.UTC)

func TestConfigValidation(t *testing.T) {
	tests := []testenv.ParseCase{ // WantErr empty: valid
		{Name: "interval", Data: "interval: 10s"},
		{Name: "schedule", Data: "schedule: 30 * * * *"},
		{Name: "descriptor", Data: "schedule: '@hourly'"},
		{Name: "schedule and interval", Data: "schedule: 0 9 * * *\ninterval: 1h"},
		// v0.10 did not read interval when schedule was set: a leftover one is no error.
		{Name: "schedule and an interval that is not a duration", Data: "schedule: 0 9 * * *\ninterval: 10"},
		{Name: "schedule and a negative interval", Data: "schedule: 0 9 * * *\ninterval: -1s"},
		{Name: "@every", Data: "schedule: '@every 1h30m'"},
		{Name: "@every under a second", Data: "schedule: '@every 10ms'"},
		{Name: "CRON_TZ prefix", Data: "schedule: CRON_TZ=Asia/Tokyo 0 9 * * *"},
		{Name: "v0.10 recurrence", Data: "schedule: 0 9 * * *\nrecurrence:\n  - EXDATE:20261225T090000Z,20261226T090000Z\n  - RRULE:FREQ=DAILY"},
		{Name: "exdate date-only and floating", Data: "interval: 1h\nrecurrence: ['EXDATE:20261225', 'EXDATE:20261226T100000']"},
		{Name: "exclusionDates", Data: "interval: 1h\nexclusionDates: ['2026-12-25', '2026-12-31T00:00:00+01:00']"},
		{Name: "timezone", Data: "schedule: 0 9 * * *\ntimezone: Asia/Kolkata"},
		{Name: "JSON payload as a string", Data: "interval: 1s\nuserPayload: \"{\\\"hello\\\": \\\"world\\\"}\""},
		{Name: "structured payload", Data: "interval: 1s\nuserPayload: {hello: world, n: 1}"},

		{Name: "neither schedule nor interval", Data: "timezone: UTC", WantErr: "calendar: one of schedule or interval is required"},
		{Name: "three cron fields", Data: "schedule: 0 9 *", WantErr: `calendar.schedule: "0 9 *" is not a 5-field cron expression: expected exactly 5 fields, found 3: [0 9 *]`},
		{Name: "seconds field", Data: "schedule: 0 0 9 * * *", WantErr: `calendar.schedule: "0 0 9 * * *" is not a 5-field cron expression`},
		{Name: "out of range", Data: "schedule: 61 * * * *", WantErr: `calendar.schedule: "61 * * * *" is not a 5-field cron expression: end of range (61) above maximum (59): 61`},
		{Name: "impossible date", Data: "schedule: 0 0 30 2 *", WantErr: `calendar.schedule: "0 0 30 2 *" never fires`},
		{Name: "negative interval", Data: "interval: -5s", WantErr: "calendar.interval: must be positive, got -5s"},
		{Name: "zero interval", Data: "interval: 0s", WantErr: "calendar.interval: must be positive, got 0s"},
		{Name: "interval without unit", Data: "interval: 10", WantErr: `calendar.interval: "10" is not a duration such as 10s or 1m30s`},
		// @every is read as interval is: cron's made each of these a 1 s delay.
		{Name: "negative @every", Data: "schedule: '@every -1h'", WantErr: "calendar.schedule: must be positive, got @every -1h"},
		{Name: "zero @every", Data: "schedule: '@every 0s'", WantErr: "calendar.schedule: must be positive, got @every 0s"},
		{Name: "@every without unit", Data: "schedule: '@every 10'", WantErr: `calendar.schedule: "@every 10" is not a duration such as @every 10s or @every 1m30s`},
		{Name: "@every with a time zone", Data: "schedule: CRON_TZ=Asia/Tokyo @every 1h", WantErr: `calendar.schedule: "CRON_TZ=Asia/Tokyo @every 1h": @every takes no time zone`},
		{Name: "unknown timezone", Data: "interval: 1s\ntimezone: Mars/Olympus", WantErr: `calendar.timezone: unknown time zone "Mars/Olympus"`},
		{Name: "bad EXDATE", Data: "interval: 1s\nrecurrence: ['EXDATE:2026-12-25']", WantErr: `calendar.recurrence[0]: "2026-12-25" is not a date such as 20060102T150405Z or 20060102`},
		{Name: "bad exclusion date", Data: "interval: 1s\nexclusionDates: ['2026-12-25', 'christmas']", WantErr: `calendar.exclusionDates[1]: "christmas" is not a date such as 2006-01-02`},
		{Name: "unknown field", Data: "intreval: 1s", WantErr: `calendar: invalid configuration: unknown field "intreval"`},
		{Name: "malformed YAML", Data: "interval: [1s", WantErr: "calendar: invalid configuration: yaml: "},
		{Name: "not a mapping", Data: "just a string", WantErr: "calendar: invalid configuration: "},
		{
			Name:    "every problem at once",
			Data:    "interval: -1s\ntimezone: Nowhere\nexclusionDates: [x]",
			WantErr: `calendar.timezone: unknown time zone "Nowhere"; calendar.interval: must be positive, got -1s; calendar.exclusionDates[0]: "x" is not a date such as 2006-01-02`,
		},
	}
	gw := gateway{clock: wallClock{}}
	testenv.ExpectParse(t, gw.Parse, tests)
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
