package tracing

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/trace"

	"github.com/eventgate/eventgate/pkg/tracing/otlptest"
)

// Without an OTLP endpoint nothing is set up: no tracer, so the hot paths skip spans.
func TestStartWithoutEndpointExportsNothing(t *testing.T) {
	stop, err := Start(context.Background(), "test", func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	defer stop(context.Background())
	if Enabled() || Tracer() != nil {
		t.Fatal("export is on without OTEL_EXPORTER_OTLP_ENDPOINT")
	}
}

// With OTEL_EXPORTER_OTLP_ENDPOINT, spans reach the endpoint's /v1/traces as OTLP protobuf,
// in the trace and under the span that the carried trace context names.
func TestStartExportsToTheEndpoint(t *testing.T) {
	collector := otlptest.Start(t)
	env := map[string]string{EndpointEnv: collector.Endpoint + "/"}
	stop, err := Start(context.Background(), "eventgate-test", func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	tr := Tracer()
	if tr == nil {
		t.Fatal("no tracer with OTEL_EXPORTER_OTLP_ENDPOINT set")
	}
	ctx := Extract(context.Background(), map[string]string{TraceParent: parent})
	_, span := tr.Start(ctx, "receive", trace.WithSpanKind(trace.SpanKindConsumer))
	span.End()
	if err := stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if Enabled() {
		t.Error("export still on after stop")
	}
	spans := collector.Spans()
	if len(spans) != 1 {
		t.Fatalf("collector has %d spans, want 1: %+v", len(spans), spans)
	}
	s := spans[0]
	if s.Name != "receive" || s.Service != "eventgate-test" || s.TraceID != "4bf92f3577b34da6a3ce929d0e0e4736" || s.ParentID != "00f067aa0ba902b7" {
		t.Errorf("span %+v", s)
	}
}
