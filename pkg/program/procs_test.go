package program

import (
	"runtime"
	"testing"
)

func TestLimitProcs(t *testing.T) {
	before := runtime.GOMAXPROCS(0)
	t.Cleanup(func() { runtime.GOMAXPROCS(before) })

	runtime.GOMAXPROCS(4)
	if got := LimitProcs(func(string) string { return "" }); got != DefaultProcs || runtime.GOMAXPROCS(0) != DefaultProcs {
		t.Errorf("without GOMAXPROCS in the environment: returned %d, in effect %d; want %d", got, runtime.GOMAXPROCS(0), DefaultProcs)
	}
	// The runtime read GOMAXPROCS from the environment at start; LimitProcs leaves it be.
	runtime.GOMAXPROCS(3)
	env := map[string]string{"GOMAXPROCS": "3"}
	if got := LimitProcs(func(k string) string { return env[k] }); got != 3 || runtime.GOMAXPROCS(0) != 3 {
		t.Errorf("with GOMAXPROCS=3: returned %d, in effect %d; want 3", got, runtime.GOMAXPROCS(0))
	}
}
