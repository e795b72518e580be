package supervisor

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/eventgate/eventgate/pkg/testenv"
	"github.com/eventgate/eventgate/protos/gateways"
)

// BenchmarkMemoryPerSource measures what the client side holds for N running event sources:
// the heap and goroutines in use once all N streams are open and idle, the gateway server
// (same process) included. Compare n=1 with n=1000 for the per-source cost.
//
//	go test -run '^$' -bench MemoryPerSource -benchtime 1x ./services/gateway-client/supervisor/
func BenchmarkMemoryPerSource(b *testing.B) {
	for _, n := range []int{1, 1000} {
		b.Run(fmt.Sprintf("sources=%d", n), func(b *testing.B) {
			for range b.N {
				g := newTickGateway("1")
				gw := testenv.StartGateway(b, g)
				before := heapInUse()
				goroutinesBefore := runtime.NumGoroutine()
				sup := New(gw.Conn, func(context.Context, string, *gateways.Event) error { return nil }, Options{Log: testenv.Logger(b)})
				var sources []Source
				for i := range n {
					sources = append(sources, Source{Name: fmt.Sprintf("s%04d", i), Data: "every: 1h"})
				}
				sup.Apply(sources)
				testenv.Eventually(b, time.Minute, 10*time.Millisecond, func() error {
					if got := len(g.runningSources()); got != n {
						return fmt.Errorf("%d of %d sources running", got, n)
					}
					return nil
				})
				after := heapInUse()
				b.ReportMetric(float64(after-before)/float64(n), "heapB/source")
				b.ReportMetric(float64(after)/(1<<20), "heapMiB")
				b.ReportMetric(float64(runtime.NumGoroutine()-goroutinesBefore)/float64(n), "goroutines/source")
				sup.Stop()
			}
		})
	}
}

func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}
