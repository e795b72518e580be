package testenv

import (
	"testing"
	"time"
)

// Tests of a source that starts at the newest message send probes until one comes
// through (then the source consumes), and later reads skip the probes that were still in
// flight. ReadUntil and ReadN are those reads, for a stream of JSON payloads of type T
// whose body, as the test sent it, is body(payload).

// ReadUntil reads events of s up to the one whose body is end, skipping those whose body
// is skip, and returns the bodies and payloads before it. Each event must come within
// timeout.
func ReadUntil[T any](t testing.TB, s *Stream, timeout time.Duration, body func(T, testing.TB) string, skip, end string) ([]string, []T) {
	t.Helper()
	var bodies []string
	var payloads []T
	for {
		p := NextJSON[T](t, s, timeout)
		b := body(p, t)
		switch b {
		case skip:
			continue
		case end:
			return bodies, payloads
		}
		bodies = append(bodies, b)
		payloads = append(payloads, p)
	}
}

// ReadN reads the bodies of the next n events of s, skipping those whose body is skip.
// Each event must come within timeout.
func ReadN[T any](t testing.TB, s *Stream, timeout time.Duration, body func(T, testing.TB) string, skip string, n int) []string {
	t.Helper()
	var bodies []string
	for len(bodies) < n {
		if b := body(NextJSON[T](t, s, timeout), t); b != skip {
			bodies = append(bodies, b)
		}
	}
	return bodies
}
