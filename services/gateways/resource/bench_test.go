package main

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/eventgate/eventgate/pkg/testenv"
	"github.com/eventgate/eventgate/pkg/testenv/kubeenv"
)

// BenchmarkWatch watches a namespace of EVENTGATE_BENCH_OBJECTS ConfigMaps (default 10000)
// and changes them: "paced" at 100 changes/s (the load: every change must arrive,
// reported with its latency), "full" as fast as 8 writers can (events/s). It reports the
// process's RSS and Go heap grown by the informer's list, in the test process that also
// runs the server:
//
//	go test -run '^$' -bench Watch -benchtime 1000x ./services/gateways/resource
func BenchmarkWatch(b *testing.B) {
	n := 10000
	if v, err := strconv.Atoi(os.Getenv("EVENTGATE_BENCH_OBJECTS")); err == nil && v > 0 {
		n = v
	}
	env := kubeenv.Shared(b)
	ns := env.Namespace(b)
	c := objects(b, env.Admin, configMaps, ns)
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("obj-%05d", i)
	}
	began := time.Now()
	parallel(b, 8, n, func(i int) error {
		_, err := c.Create(context.Background(), configMap(names[i], map[string]any{"bench": "yes"}, nil, map[string]any{"v": "0"}), metav1.CreateOptions{})
		return err
	})
	b.Logf("created %d ConfigMaps in %s", n, time.Since(began).Round(time.Millisecond))

	rss0, heap0 := rss(), heapInUse()
	h := start(b, env.Admin)
	began = time.Now()
	s := h.open(b, "bench", fmt.Sprintf("namespace: %s\nversion: v1\nkind: ConfigMap", ns))
	b.Logf("listed and watching %d objects in %s; RSS +%d MiB (now %d MiB), Go heap in use +%d MiB",
		n, time.Since(began).Round(time.Millisecond), (rss()-rss0)>>20, rss()>>20, (heapInUse()-heap0)>>20)

	version := 0
	change := func(i int) error {
		_, err := c.Patch(context.Background(), names[i%n], "application/merge-patch+json",
			[]byte(fmt.Sprintf(`{"data":{"v":"%d-%d"}}`, version, i)), metav1.PatchOptions{})
		return err
	}
	b.Run("paced", func(b *testing.B) {
		version++
		tick := time.NewTicker(10 * time.Millisecond) // 100 changes/s
		defer tick.Stop()
		sent := make([]time.Time, b.N)
		var worst time.Duration
		done := make(chan error, 1)
		b.ResetTimer()
		go func() {
			for i := range b.N {
				<-tick.C
				sent[i] = time.Now()
				if err := change(i); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
		for i := range b.N {
			r := testenv.NextJSON[received](b, s, 30*time.Second)
			if want := names[i%n]; r.Type != modified || r.Name != want {
				b.Fatalf("event %d: %s, want MODIFIED %s", i, r, want)
			}
			worst = max(worst, time.Since(sent[i]))
		}
		b.StopTimer()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		b.ReportMetric(float64(worst.Milliseconds()), "max-latency-ms")
		b.ReportMetric(float64(rss()>>20), "RSS-MiB")
	})
	b.Run("full", func(b *testing.B) {
		version++
		b.ResetTimer()
		go parallel(b, 8, b.N, change)
		for range b.N {
			if r := testenv.NextJSON[received](b, s, 30*time.Second); r.Type != modified {
				b.Fatalf("event %s", r)
			}
		}
		b.StopTimer()
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		b.ReportMetric(float64(rss()>>20), "RSS-MiB")
	})
}

// parallel runs do(0) .. do(n-1) on workers goroutines.
func parallel(b *testing.B, workers, n int, do func(i int) error) {
	var wg sync.WaitGroup
	var once sync.Once
	var failed error
	next := make(chan int)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := do(i); err != nil {
					once.Do(func() { failed = err })
				}
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	if failed != nil {
		b.Error(failed)
	}
}

func rss() int64 {
	raw, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

func heapInUse() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapInuse)
}
