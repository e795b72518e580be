package dispatch

import (
	"context"
	"math/rand/v2"
	"time"
)

// Backoff is the wait between delivery attempts: Initial, multiplied by Factor after each
// failure (or, Linear, Initial times the retry's number) up to Max, less a random share of
// up to Jitter so that many clients retrying one sensor spread out.
type Backoff struct {
	Initial time.Duration
	Max     time.Duration
	Factor  float64
	Jitter  float64 // 0..1
	Linear  bool
}

// DefaultBackoff retries quickly at first and settles at one attempt every 30 s.
var DefaultBackoff = Backoff{Initial: 100 * time.Millisecond, Max: 30 * time.Second, Factor: 2, Jitter: 0.2}

// Delay is the wait before retry number attempt (0 for the first retry).
func (b Backoff) Delay(attempt int) time.Duration {
	d := float64(b.Initial)
	if b.Linear {
		d = min(d*float64(attempt+1), float64(b.Max))
		attempt = 0
	}
	for range attempt {
		d *= b.Factor
		if d >= float64(b.Max) {
			d = float64(b.Max)
			break
		}
	}
	d -= d * b.Jitter * rand.Float64()
	return time.Duration(d)
}

// sleep waits d, or less if ctx ends first.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
