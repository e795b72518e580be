package faults

import (
	"errors"
	"hash/fnv"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The suite's knobs, all optional: a failing run prints its seed, and the same seed replays
// the same faults in the same order with the same gaps (what the processes do meanwhile
// depends on timing, so a replay is close, not identical).
const (
	envSeed     = "EVENTGATE_FAULT_SEED"     // default: a new one each run
	envRounds   = "EVENTGATE_FAULT_ROUNDS"   // each fault this many times per gateway, default 3
	envRate     = "EVENTGATE_FAULT_RATE"     // events per second per gateway, default 200
	envGateways = "EVENTGATE_FAULT_GATEWAYS" // comma-separated subset, default all
	// envReport names a file the SUMMARY lines are appended to: go test shows a passing
	// test's log only with -v.
	envReport = "EVENTGATE_FAULT_REPORT"
)

type settings struct {
	seed     uint64
	rounds   int
	rate     int
	gateways map[string]bool // nil: all
	report   string
}

func loadSettings(t *testing.T) settings {
	t.Helper()
	s := settings{seed: uint64(time.Now().UnixNano()) % 1_000_000_000, rounds: 3, rate: 200}
	number := func(env string, into *int) {
		if v := os.Getenv(env); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				t.Fatalf("%s=%q: want a positive number", env, v)
			}
			*into = n
		}
	}
	if v := os.Getenv(envSeed); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("%s=%q: want a number", envSeed, v)
		}
		s.seed = n
	}
	number(envRounds, &s.rounds)
	s.report = os.Getenv(envReport)
	number(envRate, &s.rate)
	if v := os.Getenv(envGateways); v != "" {
		s.gateways = map[string]bool{}
		for _, g := range strings.Split(v, ",") {
			s.gateways[strings.TrimSpace(g)] = true
		}
	}
	return s
}

// rng is the gateway's own random source: each gateway's schedule depends on the seed
// only, not on which other gateways run.
func (s settings) rng(gateway string) *rand.Rand {
	h := fnv.New64a()
	h.Write([]byte(gateway))
	return rand.New(rand.NewPCG(s.seed, h.Sum64()))
}

// between is a duration drawn uniformly in [lo, hi).
func between(rng *rand.Rand, lo, hi time.Duration) time.Duration {
	return lo + time.Duration(rng.Int64N(int64(hi-lo)))
}

// summarize logs a gateway's summary line, and appends it to the report file if one is set.
func (s settings) summarize(t *testing.T, line string) {
	t.Helper()
	t.Log(line)
	if s.report == "" {
		return
	}
	f, err := os.OpenFile(s.report, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err == nil {
		_, err = f.WriteString(line + "\n")
		err = errors.Join(err, f.Close())
	}
	if err != nil {
		t.Errorf("%s: %v", envReport, err)
	}
}
