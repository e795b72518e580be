package program

import "runtime"

// DefaultProcs is how many threads run Go code at once (GOMAXPROCS) in a gateway server or
// a gateway-client whose environment does not set GOMAXPROCS.
//
// These processes relay: each event is a chain of hand-offs between goroutines (an HTTP
// connection's, the gRPC stream's reader and writer, a delivery worker, net/http's
// connection goroutines, the acknowledgement writer), each doing a few microseconds of
// work. With more than one P, a hand-off while a P is idle wakes another thread, which
// spins looking for work and goes back to sleep; with one, the goroutine handed to runs next
// on the same thread. Measured by tools/bench on 2 cores, webhook gateway and gateway-client
// at GOMAXPROCS 1 against 2 (72 s per path): CPU per event 12-15% lower at full load and 20%
// lower at 1,000 events/s, e2e p99 at 1,000 events/s 1.08 against 1.40 ms, 2.6 MiB less
// peak RSS, events/s within the runs' spread. A process that needs more than a core (a
// high-rate source on a large machine) sets GOMAXPROCS.
const DefaultProcs = 1

// LimitProcs sets GOMAXPROCS to DefaultProcs unless getenv("GOMAXPROCS") sets it, and
// returns the value in effect.
func LimitProcs(getenv func(string) string) int {
	if getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(DefaultProcs)
	}
	return runtime.GOMAXPROCS(0)
}
