package config

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
)

// Backoff is the `backoff` block of the stream gateways, as v0.10 wrote it (the fields of
// Kubernetes' wait.Backoff). v0.10 used it only for the first connection; here it spaces
// every reconnect for the life of the source. Duration is the first wait, multiplied by
// Factor (at least 1) after each failed attempt, for at most Steps attempts (after that the
// wait stays where it got to), never beyond MaxBackoffDelay, plus up to Jitter (0 to 1) ×
// the wait at random.
type Backoff struct {
	Duration Duration `json:"duration,omitempty"`
	Factor   float64  `json:"factor,omitempty"`
	Jitter   float64  `json:"jitter,omitempty"`
	Steps    int      `json:"steps,omitempty"`
}

// Defaults for a missing or partly filled backoff block.
const (
	DefaultBackoffDuration = time.Second
	DefaultBackoffFactor   = 2
	// MaxBackoffDelay caps the wait, so a source that lost its broker for an hour is back
	// within a minute of the broker.
	MaxBackoffDelay = time.Minute
	// MaxBackoffJitter is the largest Jitter: the wait plus up to as much again at random,
	// so at most twice MaxBackoffDelay.
	MaxBackoffJitter = 1
)

// Validate records every problem of b, with paths under path ("nats.backoff").
func (b Backoff) Validate(errs *Errors, path string) {
	if b.Duration < 0 {
		errs.Addf(path+".duration", "must not be negative, got %s", time.Duration(b.Duration))
	}
	switch {
	case math.IsNaN(b.Factor) || math.IsInf(b.Factor, 0):
		errs.Addf(path+".factor", "must be a number, got %g", b.Factor)
	case b.Factor < 0:
		errs.Addf(path+".factor", "must not be negative, got %g", b.Factor)
	case b.Factor > 0 && b.Factor < 1:
		errs.Addf(path+".factor", "must be at least 1 (or 0: the default, %d), got %g: below 1 the wait would shrink at each failed attempt", DefaultBackoffFactor, b.Factor)
	}
	switch {
	case math.IsNaN(b.Jitter) || math.IsInf(b.Jitter, 0):
		errs.Addf(path+".jitter", "must be a number, got %g", b.Jitter)
	case b.Jitter < 0:
		errs.Addf(path+".jitter", "must not be negative, got %g", b.Jitter)
	case b.Jitter > MaxBackoffJitter:
		errs.Addf(path+".jitter", "must be at most %d (the wait plus up to as much again at random), got %g", MaxBackoffJitter, b.Jitter)
	}
	if b.Steps < 0 {
		errs.Addf(path+".steps", "must not be negative, got %d", b.Steps)
	}
}

// Delay is the wait before reconnect attempt number attempt (0 for the first). It is
// never below the first wait (or MaxBackoffDelay, if that is smaller) nor above twice
// MaxBackoffDelay, whatever b holds: values that Validate refuses are taken as the nearest
// valid ones (a factor below 1 as 1, a jitter outside 0-1 as its bound, a negative duration
// as the default).
func (b Backoff) Delay(attempt int) time.Duration {
	d := float64(b.Duration)
	if d <= 0 {
		d = float64(DefaultBackoffDuration)
	}
	factor := b.Factor
	switch {
	case factor == 0:
		factor = DefaultBackoffFactor
	case !(factor >= 1): // below 1, or NaN
		factor = 1
	}
	if b.Steps > 0 && attempt > b.Steps {
		attempt = b.Steps
	}
	if attempt > 0 {
		d *= math.Pow(factor, float64(attempt)) // +Inf past float64's range, then capped
	}
	d = min(d, float64(MaxBackoffDelay))
	if jitter := min(b.Jitter, MaxBackoffJitter); jitter > 0 { // false for NaN
		d += d * jitter * rand.Float64()
	}
	return time.Duration(d)
}

// Duration is a time.Duration written either as v0.10 did, integer nanoseconds
// (10000000000), or as a Go duration string ("10s").
type Duration time.Duration

func (d *Duration) UnmarshalJSON(b []byte) error {
	s := strings.TrimSpace(string(b))
	if strings.HasPrefix(s, `"`) {
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		if v, err := time.ParseDuration(s); err == nil {
			*d = Duration(v)
			return nil
		}
		// A quoted number is nanoseconds too: YAML users quote numbers out of caution.
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			*d = Duration(n)
			return nil
		}
		return fmt.Errorf("%q is not a duration such as 10s, nor integer nanoseconds", s)
	}
	n, err := strconv.ParseFloat(s, 64)
	if err != nil || n != float64(int64(n)) {
		return fmt.Errorf("%s is not a duration such as 10s, nor integer nanoseconds", s)
	}
	*d = Duration(int64(n))
	return nil
}

func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }
