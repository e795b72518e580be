package main

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/eventgate/eventgate/pkg/config"
)

// Config is one calendar event source: every Argo Events v0.10 field, plus exclusionDates.
type Config struct {
	// Schedule is a 5-field cron expression (or a descriptor such as @hourly); it wins over
	// Interval when both are set, as in v0.10, and Interval is then not read. When the
	// clocks change, a schedule that runs every hour fires by real time; one at fixed times
	// of day fires a repeated time once and a skipped one at the change (see cronSchedule).
	// "@every <duration>" is read as an Interval.
	Schedule string `json:"schedule,omitempty"`
	// Interval is a positive Go duration between events ("10s", "1.5s").
	Interval string `json:"interval,omitempty"`
	// Recurrence holds RFC 5545 lines; "EXDATE:" lines list days on which no event fires
	// (20060102T150405Z, 20060102T150405 or 20060102, comma separated). Other lines are
	// ignored, as v0.10 ignored them.
	Recurrence []string `json:"recurrence,omitempty"`
	// Timezone is an IANA zone name; the schedule and the exclusion days are read in it.
	Timezone string `json:"timezone,omitempty"`
	// UserPayload is any JSON, passed through in every event.
	UserPayload json.RawMessage `json:"userPayload,omitempty"`
	// ExclusionDates is the friendlier spelling of EXDATE: days as 2006-01-02 (a time part,
	// as in an RFC 3339 timestamp, is allowed and ignored).
	ExclusionDates []string `json:"exclusionDates,omitempty"`
}

// plan is a validated Config, ready to compute firing times.
type plan struct {
	next func(after time.Time) time.Time // zero when it never fires again
	// firstFrom is the first firing at or after t; it resumes the plan after an excluded day.
	firstFrom   func(t time.Time) time.Time
	location    *time.Location
	excluded    map[civilDate]bool
	userPayload json.RawMessage
}

type civilDate struct {
	year  int
	month time.Month
	day   int
}

func dateOf(t time.Time) civilDate { return civilDate{t.Year(), t.Month(), t.Day()} }

// cronParser reads the 5-field expressions v0.10 accepted, plus descriptors (@daily).
var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// exdatePrefix starts the recurrence lines that exclude days.
const exdatePrefix = "EXDATE:"

// compile validates c, reporting every problem with its field path, and returns the plan.
// now is used to reject schedules that can never fire (February 30th).
func (c *Config) compile(now time.Time) (*plan, error) {
	var errs config.Errors
	p := &plan{location: time.UTC, excluded: map[civilDate]bool{}, userPayload: c.UserPayload}

	if c.Timezone != "" {
		loc, err := time.LoadLocation(c.Timezone)
		if err != nil {
			errs.Addf("calendar.timezone", "unknown time zone %q", c.Timezone)
		} else {
			p.location = loc
		}
	}

	switch {
	case c.Schedule != "":
		// As in v0.10, interval is then not read at all: a leftover one, even one that is
		// not a duration, is ignored.
		p.useSchedule(&errs, c.Schedule, now)
	case c.Interval != "":
		if d, ok := parseInterval(&errs, "calendar.interval", "", c.Interval); ok {
			p.useInterval(d)
		}
	default:
		errs.Addf("calendar", "one of schedule or interval is required")
	}

	for i, line := range c.Recurrence {
		value, ok := strings.CutPrefix(strings.TrimSpace(line), exdatePrefix)
		if !ok {
			continue
		}
		for _, field := range strings.Split(value, ",") {
			d, ok := parseExdate(strings.TrimSpace(field))
			if !ok {
				errs.Addf(config.Index("calendar.recurrence", i), "%q is not a date such as 20060102T150405Z or 20060102", field)
				continue
			}
			p.excluded[d] = true
		}
	}
	for i, s := range c.ExclusionDates {
		d, ok := parseExclusionDate(strings.TrimSpace(s))
		if !ok {
			errs.Addf(config.Index("calendar.exclusionDates", i), "%q is not a date such as 2006-01-02", s)
			continue
		}
		p.excluded[d] = true
	}

	if err := errs.Err(); err != nil {
		return nil, err
	}
	return p, nil
}

// everyPrefix starts cron's "@every <duration>" descriptor.
const everyPrefix = "@every "

// useSchedule makes p fire on schedule, a cron expression or descriptor. now is used to
// reject schedules that can never fire (February 30th).
func (p *plan) useSchedule(errs *config.Errors, schedule string, now time.Time) {
	// cron's @every rounds down to whole seconds and turns anything shorter than a second,
	// even a negative duration, into one second: read it as an interval instead.
	if every, ok := strings.CutPrefix(schedule, everyPrefix); ok {
		if d, ok := parseInterval(errs, "calendar.schedule", everyPrefix, every); ok {
			p.useInterval(d)
		}
		return
	}
	parsed, err := cronParser.Parse(schedule)
	if err != nil {
		errs.Addf("calendar.schedule", "%q is not a 5-field cron expression: %v", schedule, err)
		return
	}
	spec, ok := parsed.(*cron.SpecSchedule)
	if !ok { // "CRON_TZ=Europe/Paris @every 1h": a fixed delay has no time zone
		errs.Addf("calendar.schedule", "%q: @every takes no time zone", schedule)
		return
	}
	s := newCronSchedule(spec, p.location)
	if s.next(now.In(p.location)).IsZero() {
		errs.Addf("calendar.schedule", "%q never fires", schedule)
		return
	}
	p.next, p.firstFrom = s.next, s.firstFrom
}

// useInterval makes p fire every d, and resume at the start of the day after an excluded
// one.
func (p *plan) useInterval(d time.Duration) {
	// Not cron.ConstantDelaySchedule: it rounds to whole seconds.
	p.next = func(after time.Time) time.Time { return after.Add(d) }
	p.firstFrom = func(t time.Time) time.Time { return t }
}

// parseInterval reads s, a positive Go duration, reporting problems under path; prefix is
// what precedes s in the field ("@every ").
func parseInterval(errs *config.Errors, path, prefix, s string) (time.Duration, bool) {
	d, err := time.ParseDuration(s)
	switch {
	case err != nil:
		errs.Addf(path, "%q is not a duration such as %s10s or %s1m30s", prefix+s, prefix, prefix)
	case d <= 0:
		errs.Addf(path, "must be positive, got %s", prefix+s)
	default:
		return d, true
	}
	return 0, false
}

// The day of an exclusion is the one written, whatever the time part says: "EXDATE:
// 20261225T000000Z" means December 25th in the source's zone, as it did in v0.10.
func parseExdate(s string) (civilDate, bool) {
	for _, layout := range []string{"20060102T150405Z", "20060102T150405", "20060102"} {
		if t, err := time.Parse(layout, s); err == nil {
			return dateOf(t), true
		}
	}
	return civilDate{}, false
}

func parseExclusionDate(s string) (civilDate, bool) {
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return dateOf(t), true
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return dateOf(t), true
	}
	return civilDate{}, false
}
