package tracing

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/trace"
)

const parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

func TestValidTraceParent(t *testing.T) {
	for _, tc := range []struct {
		name, tp string
		valid    bool
	}{
		{"version 00", parent, true},
		{"not sampled", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", true},
		{"later version with more fields", "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra", true},
		{"empty", "", false},
		{"version 00 with more fields", parent + "-extra", false},
		{"version ff", "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", false},
		{"upper-case hex", "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", false},
		{"zero trace id", "00-00000000000000000000000000000000-00f067aa0ba902b7-01", false},
		{"zero span id", "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", false},
		{"short trace id", "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01", false},
		{"not hex", "00-4bf92f3577b34da6a3ce929d0e0e473x-00f067aa0ba902b7-01", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ValidTraceParent(tc.tp); got != tc.valid {
				t.Errorf("ValidTraceParent(%q) = %v, want %v", tc.tp, got, tc.valid)
			}
		})
	}
}

func TestCarry(t *testing.T) {
	t.Run("none", func(t *testing.T) {
		if md := Carry(nil, "", "x=1"); md != nil {
			t.Errorf("no traceparent: metadata %v, want nil", md)
		}
	})
	t.Run("invalid", func(t *testing.T) {
		md := map[string]string{"a": "b"}
		if got := Carry(md, "garbage", "x=1"); len(got) != 1 {
			t.Errorf("invalid traceparent: metadata %v, want only a", got)
		}
	})
	t.Run("valid", func(t *testing.T) {
		md := Carry(nil, parent, "vendor=1")
		if md[TraceParent] != parent || md[TraceState] != "vendor=1" || len(md) != 2 {
			t.Errorf("metadata %v", md)
		}
	})
	t.Run("no allocation without trace context", func(t *testing.T) {
		if n := testing.AllocsPerRun(100, func() { Carry(nil, "", "") }); n != 0 {
			t.Errorf("%v allocations per message without trace context, want 0", n)
		}
	})
}

// Extract and Inject are inverse: the event travels on as the child of the span started
// from what came in, in the same trace.
func TestExtractInject(t *testing.T) {
	md := map[string]string{TraceParent: parent, TraceState: "vendor=1", "other": "kept"}
	sc := trace.SpanContextFromContext(Extract(context.Background(), md))
	if sc.TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" || sc.SpanID().String() != "00f067aa0ba902b7" || !sc.IsRemote() || sc.TraceState().Get("vendor") != "1" {
		t.Fatalf("extracted %+v", sc)
	}
	child := trace.NewSpanContext(trace.SpanContextConfig{TraceID: sc.TraceID(), SpanID: trace.SpanID{1, 2, 3, 4, 5, 6, 7, 8}, TraceFlags: sc.TraceFlags(), TraceState: sc.TraceState()})
	out := Inject(trace.ContextWithSpanContext(context.Background(), child), md)
	if want := "00-4bf92f3577b34da6a3ce929d0e0e4736-0102030405060708-01"; out[TraceParent] != want || out[TraceState] != "vendor=1" || out["other"] != "kept" {
		t.Errorf("injected %v, want traceparent %s", out, want)
	}
	if md[TraceParent] != parent {
		t.Errorf("Inject changed the source's metadata: %v", md)
	}
}
