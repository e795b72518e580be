package main

import (
	"time"

	"github.com/robfig/cron/v3"
)

// cronSchedule fires a cron expression in a time zone, with the rule of Vixie and ISC cron
// for the days the clocks change:
//
//   - a job that runs every hour or more often (its hour field matches every hour) runs by
//     real time: it fires in both passes of an hour that repeats, and not in one that is
//     skipped;
//   - a job at fixed times of day fires once for each matching local time: a time that
//     repeats fires at its first occurrence only, a time that is skipped fires at the first
//     instant after the change.
//
// robfig/cron's SpecSchedule.Next walks real time and reads the fields in the zone, which
// fires a repeated fixed time twice and a skipped one never. So cron matches the fields on
// wall-clock readings held as UTC times (UTC has no changes, so its matching is exact), and
// the readings are placed on real time here.
type cronSchedule struct {
	readings *cron.SpecSchedule // matches wall-clock readings: its Location is UTC
	zone     *time.Location
	hourly   bool
}

// everyHour is a SpecSchedule hour field that matches each of the 24 hours.
const everyHour = 1<<24 - 1

// newCronSchedule fires spec in zone, or in spec's own zone if it has a CRON_TZ= prefix.
func newCronSchedule(spec *cron.SpecSchedule, zone *time.Location) *cronSchedule {
	if spec.Location != time.Local {
		zone = spec.Location
	}
	readings := *spec
	readings.Location = time.UTC
	return &cronSchedule{readings: &readings, zone: zone, hourly: spec.Hour&everyHour == everyHour}
}

// next is the first firing after t, in t's location (as robfig/cron: a CRON_TZ= zone does
// not change the zone events are reported in); zero when it never fires again.
func (s *cronSchedule) next(after time.Time) time.Time {
	var at time.Time
	if s.hourly {
		at = s.nextByRealTime(after)
	} else {
		at = s.nextFixedTime(after)
	}
	return at.In(after.Location())
}

// firstFrom is the first firing at or after t.
func (s *cronSchedule) firstFrom(t time.Time) time.Time {
	return s.next(t.Add(-time.Nanosecond))
}

// nextFixedTime is the first firing after after of a fixed-time job: each matching reading
// fires once, at the first instant the clock shows it, or shows a later time.
func (s *cronSchedule) nextFixedTime(after time.Time) time.Time {
	reading := wallReading(after, s.zone)
	for {
		reading = s.readings.Next(reading)
		if reading.IsZero() {
			return time.Time{}
		}
		// A reading before the clock went back may first have shown before after.
		if at := firstShowing(reading, s.zone); at.After(after) {
			return at
		}
	}
}

// nextByRealTime is the first instant after after at which the clock shows a matching
// reading, for a job that runs every hour.
func (s *cronSchedule) nextByRealTime(after time.Time) time.Time {
	from := after.Add(time.Nanosecond) // the first instant that may fire
	for {
		local := from.In(s.zone)
		_, offset := local.Zone()
		_, end := local.ZoneBounds()
		// Next(r - 1ns) is the first matching reading at or after r.
		reading := s.readings.Next(wallReading(from, s.zone).Add(-time.Nanosecond))
		if reading.IsZero() {
			return time.Time{}
		}
		at := reading.Add(-seconds(offset))
		if end.IsZero() || at.Before(end) {
			return at
		}
		from = end // the clock changed first: match the readings after the change
	}
}

// wallReading is what a clock in zone shows at t, as a UTC time.
func wallReading(t time.Time, zone *time.Location) time.Time {
	_, offset := t.In(zone).Zone()
	return t.UTC().Add(seconds(offset))
}

// firstShowing is the first instant at which a clock in zone shows reading (a UTC time) or
// a later time: when the clock went back over reading, its first occurrence; when the clock
// skipped it, the instant of the change.
func firstShowing(reading time.Time, zone *time.Location) time.Time {
	// No zone is 15 hours ahead of UTC: here the clock shows less than reading.
	t := reading.Add(-15 * time.Hour).In(zone)
	for {
		_, offset := t.Zone()
		_, end := t.ZoneBounds()
		if at := reading.Add(-seconds(offset)).In(zone); end.IsZero() || at.Before(end) {
			return at
		}
		if t = end; !wallReading(t, zone).Before(reading) {
			return t
		}
	}
}

// startOfNextDay is the first instant of the day after t's, in t's location: midnight,
// unless the clock skipped it.
func startOfNextDay(t time.Time) time.Time {
	y, m, d := t.Date()
	return firstShowing(time.Date(y, m, d+1, 0, 0, 0, 0, time.UTC), t.Location())
}

func seconds(n int) time.Duration { return time.Duration(n) * time.Second }
