// Package tracing carries W3C trace context (traceparent, tracestate) with events, from
// the request or message a gateway received to the sensor's request, and exports spans
// through OpenTelemetry when OTEL_EXPORTER_OTLP_ENDPOINT asks for it.
package tracing

import (
	"context"

	"go.opentelemetry.io/otel/propagation"
)

// The Event metadata keys that carry the trace context, reserved for it. They are the W3C
// header names and the CloudEvents distributed tracing extension's attribute names, so the
// metadata becomes those attributes as every other metadata key becomes an extension.
const (
	TraceParent = "traceparent"
	TraceState  = "tracestate"
)

// Carry returns md with traceparent and tracestate added when traceparent is a valid W3C
// traceparent; md is allocated then if nil. Otherwise md is returned as it is: a source
// calls it for every message, and one without trace context costs nothing.
func Carry(md map[string]string, traceparent, tracestate string) map[string]string {
	if !ValidTraceParent(traceparent) {
		return md
	}
	if md == nil {
		md = make(map[string]string, 2)
	}
	md[TraceParent] = traceparent
	if tracestate != "" {
		md[TraceState] = tracestate
	}
	return md
}

// ValidTraceParent reports whether s is a traceparent this hop may pass on: version 00's
// layout (later versions may append fields), lower-case hex, non-zero trace and span ids.
func ValidTraceParent(s string) bool {
	const size = 55 // 2 + 1 + 32 + 1 + 16 + 1 + 2
	if len(s) < size || s[2] != '-' || s[35] != '-' || s[52] != '-' {
		return false
	}
	if len(s) > size && (s[:2] == "00" || s[size] != '-') {
		return false
	}
	if s[:2] == "ff" || !hex(s[:2]) || !hex(s[53:55]) {
		return false
	}
	return hex(s[3:35]) && !zeros(s[3:35]) && hex(s[36:52]) && !zeros(s[36:52])
}

func hex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func zeros(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] != '0' {
			return false
		}
	}
	return true
}

// w3c reads and writes traceparent and tracestate.
var w3c propagation.TraceContext

// Extract returns ctx with the remote span context that md's trace context names, for the
// spans started from it to be its children; ctx as it is when md has none.
func Extract(ctx context.Context, md map[string]string) context.Context {
	if md[TraceParent] == "" {
		return ctx
	}
	return w3c.Extract(ctx, propagation.MapCarrier(md))
}

// Inject returns a copy of md whose trace context is ctx's span: the event then travels on
// as that span's child. md itself is left alone, as the source may still hold it.
func Inject(ctx context.Context, md map[string]string) map[string]string {
	out := make(map[string]string, len(md)+2)
	for k, v := range md {
		if k != TraceParent && k != TraceState {
			out[k] = v
		}
	}
	w3c.Inject(ctx, propagation.MapCarrier(out))
	return out
}
