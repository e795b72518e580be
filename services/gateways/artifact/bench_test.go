package main

import (
	"bytes"
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/eventgate/eventgate/pkg/secret"
	"github.com/eventgate/eventgate/pkg/testenv"
	"github.com/eventgate/eventgate/pkg/testenv/minioenv"
	"github.com/eventgate/eventgate/protos/gateways"
)

// Bench load: putters PUT objects at once, at most benchWindow ahead of the listener
// (MinIO drops events for a listener too far behind, and the benchmark measures delivery).
const (
	benchPutters = 8
	benchWindow  = 256
)

// BenchmarkListen measures S3 events per second from MinIO: "raw" with minio-go's own
// ListenBucketNotification loop (the baseline), "gateway" through the gateway server's gRPC
// stream. Both read one event for each of b.N PUTs; the ratio of the two is logged:
//
//	go test -run '^$' -bench Listen -benchtime 1000x ./services/gateways/artifact
func BenchmarkListen(b *testing.B) {
	srv := minioenv.Shared(b)
	c := srv.Client()
	dir := secretsDir(b, minioenv.AccessKey, minioenv.SecretKey)
	runs := 0
	rates := map[string]float64{}

	b.Run("raw", func(b *testing.B) {
		runs++
		bucket := "bench-raw-" + strconv.Itoa(runs)
		srv.MakeBucket(b, bucket)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		ch := c.ListenBucketNotification(ctx, bucket, "", "", []string{"s3:ObjectCreated:*"})
		// Probes until one arrives: the listen is in place.
		for i := 0; ; i++ {
			put(b, c, bucket, "probe-"+strconv.Itoa(i))
			select {
			case info := <-ch:
				if info.Err != nil {
					b.Fatal(info.Err)
				}
			case <-time.After(100 * time.Millisecond):
				continue
			}
			break
		}
		drain(ch)
		b.ResetTimer()
		w := putting(b, c, bucket, b.N)
		for got := 0; got < b.N; {
			select {
			case info := <-ch:
				if info.Err != nil {
					b.Fatal(info.Err)
				}
				for range info.Records {
					if got++; got <= b.N {
						w.credit()
					}
				}
			case <-time.After(time.Minute):
				b.Fatalf("%d events of %d within a minute", got, b.N)
			}
		}
		rates["raw"] = report(b)
		w.wait(b)
	})

	b.Run("gateway", func(b *testing.B) {
		runs++
		bucket := "bench-gateway-" + strconv.Itoa(runs)
		srv.MakeBucket(b, bucket)
		gw := testenv.StartGateway(b, newGateway(secret.Dir(string(dir))))
		s := testenv.OpenStream(b, gw.Client, &gateways.EventSource{Name: "bench", Data: sourceData(srv, bucket, "events: ['s3:ObjectCreated:*']")})
		waitListening(b, c, bucket, s, probes(""))
		b.ResetTimer()
		w := putting(b, c, bucket, b.N)
		for range b.N {
			s.Next(b, time.Minute)
			w.credit()
		}
		rates["gateway"] = report(b)
		w.wait(b)
		s.Close()
	})
	if rates["raw"] > 0 {
		b.Logf("gateway/raw events/s: %.0f/%.0f = %.2f", rates["gateway"], rates["raw"], rates["gateway"]/rates["raw"])
	}
}

func report(b *testing.B) float64 {
	rate := float64(b.N) / b.Elapsed().Seconds()
	b.ReportMetric(rate, "events/s")
	return rate
}

// drain discards what the channel holds now (late probes).
func drain[T any](ch <-chan T) {
	for {
		select {
		case <-ch:
		case <-time.After(200 * time.Millisecond):
			return
		}
	}
}

// putWindow PUTs n objects with benchPutters goroutines, each PUT taking a credit.
type putWindow struct {
	credits chan struct{}
	wg      sync.WaitGroup
	mu      sync.Mutex
	err     error
}

func putting(b *testing.B, c *minio.Client, bucket string, n int) *putWindow {
	w := &putWindow{credits: make(chan struct{}, benchWindow)}
	next := make(chan int, n)
	for i := range n {
		next <- i
	}
	close(next)
	body := make([]byte, 100)
	for range benchPutters {
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			for i := range next {
				w.credits <- struct{}{}
				_, err := c.PutObject(context.Background(), bucket, "object-"+strconv.Itoa(i), bytes.NewReader(body), int64(len(body)), minio.PutObjectOptions{})
				if err != nil {
					w.mu.Lock()
					w.err = err
					w.mu.Unlock()
					return
				}
			}
		}()
	}
	return w
}

func (w *putWindow) credit() { <-w.credits }

func (w *putWindow) wait(b *testing.B) {
	w.wg.Wait()
	if w.err != nil {
		b.Fatal(w.err)
	}
}
