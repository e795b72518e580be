package main

import (
	"context"
	"net/http"
	"testing"

	"github.com/eventgate/eventgate/pkg/tracing"
	"github.com/eventgate/eventgate/pkg/tracing/otlptest"
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
	client := benchClient(b)
	postParallel(b, client, startBenchRoute(b, client), http.Header{"Traceparent": {incomingParent}})
}
