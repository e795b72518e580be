package testenv

import (
	"testing"
	"time"
)

// Eventually polls cond every poll until it returns nil, and fails the test with cond's
// last error once total has passed. It replaces sleeps as synchronisation.
func Eventually(t testing.TB, total, poll time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(total)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s: %v", total, err)
		}
		time.Sleep(poll)
	}
}
