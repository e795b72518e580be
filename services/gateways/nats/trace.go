package main

import (
	"github.com/nats-io/nats.go"

	"github.com/eventgate/eventgate/pkg/tracing"
)

// traceContext adds the W3C trace context in a message's headers (traceparent, tracestate)
// to md. NATS header names are case-sensitive: the lower-case names OpenTelemetry writes,
// else the canonical ones net/http-minded publishers write.
func traceContext(md map[string]string, h nats.Header) map[string]string {
	if len(h) == 0 {
		return md
	}
	return tracing.Carry(md, first(h, tracing.TraceParent, "Traceparent"), first(h, tracing.TraceState, "Tracestate"))
}

func first(h nats.Header, keys ...string) string {
	for _, k := range keys {
		if v := h[k]; len(v) > 0 {
			return v[0]
		}
	}
	return ""
}
