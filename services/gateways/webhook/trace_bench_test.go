package main

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/eventgate/eventgate/pkg/testenv"
	"github.com/eventgate/eventgate/pkg/tracing"
	"github.com/eventgate/eventgate/pkg/tracing/otlptest"
	"github.com/eventgate/eventgate/protos/gateways"
)

// BenchmarkTracedRequest is BenchmarkRequest's webhook path for requests that carry a
// traceparent: with span export off (the trace context only travels in the metadata) and
// on (receive and stream spans, exported to an in-test collector). Beside
// BenchmarkRequest/webhook it is the price of trace context per request.
//
//	go test -run '^$' -bench 'Request' -cpu 2 ./services/gateways/webhook/
func BenchmarkTracedRequest(b *testing.B) {
	for _, export := range []bool{false, true} {
		name := "export-off"
		if export {
			name = "export-on"
		}
		b.Run(name, func(b *testing.B) {
			if export {
				collector := otlptest.Start(b)
				env := map[string]string{tracing.EndpointEnv: collector.Endpoint}
				stop, err := tracing.Start(context.Background(), "webhook-gateway", func(k string) string { return env[k] })
				if err != nil {
					b.Fatal(err)
				}
				defer stop(context.Background())
			}
			benchmarkTraced(b)
		})
	}
}

func benchmarkTraced(b *testing.B) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 256
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	defer tr.CloseIdleConnections()
	gw := testenv.StartGateway(b, newGateway("127.0.0.1"))
	port := freePort(b)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stream, err := gw.Client.StartEventSource(ctx, &gateways.EventSource{Name: "bench", Data: `{endpoint: /hook, port: "` + port + `", method: POST}`})
	if err != nil {
		b.Fatal(err)
	}
	drained := make(chan struct{})
	defer func() { cancel(); <-drained }()
	go func() {
		defer close(drained)
		for {
			if _, err := stream.Recv(); err != nil {
				return
			}
		}
	}()
	url := "http://127.0.0.1:" + port + "/hook"
	testenv.Eventually(b, 10*time.Second, 5*time.Millisecond, func() error { return probe(client, url, http.StatusMethodNotAllowed) })
	body := `{"action": "opened", "number": 1347, "sender": {"login": "octocat"}}`
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest("POST", url, strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Traceparent", incomingParent)
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
}
