package tracing

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// The standard OpenTelemetry variables that turn export on; the exporter reads them, and
// the rest of the OTEL_EXPORTER_OTLP_* family (headers, timeout, ...) from the process
// environment itself.
const (
	EndpointEnv       = "OTEL_EXPORTER_OTLP_ENDPOINT"
	TracesEndpointEnv = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
)

// tracer is the process's tracer while export is on, nil otherwise: the hot paths check it
// and do nothing more when it is nil.
var tracer atomic.Pointer[trace.Tracer]

// Tracer returns the tracer spans are exported through, or nil when export is off.
func Tracer() trace.Tracer {
	if t := tracer.Load(); t != nil {
		return *t
	}
	return nil
}

// Enabled reports whether spans are exported.
func Enabled() bool { return tracer.Load() != nil }

// Start turns span export on when the environment names an OTLP endpoint, for the process
// named service (OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES override it): spans go by
// OTLP over HTTP (protobuf), in batches. Without an endpoint nothing is set up, no
// exporter exists, and stop does nothing. stop flushes what is buffered and turns export
// off again.
func Start(ctx context.Context, service string, getenv func(string) string) (stop func(context.Context) error, err error) {
	url := getenv(TracesEndpointEnv)
	if base := getenv(EndpointEnv); url == "" && base != "" {
		url = strings.TrimSuffix(base, "/") + "/v1/traces" // the base's traces path, per the spec
	}
	if url == "" {
		return func(context.Context) error { return nil }, nil
	}
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(url))
	if err != nil {
		return nil, fmt.Errorf("OTLP trace exporter: %w", err)
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", service)),
		resource.WithFromEnv(), resource.WithTelemetrySDK())
	if err != nil {
		return nil, fmt.Errorf("trace resource: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	t := tp.Tracer("github.com/eventgate/eventgate")
	tracer.Store(&t)
	return func(ctx context.Context) error {
		tracer.CompareAndSwap(&t, nil)
		return tp.Shutdown(ctx)
	}, nil
}

// stopTimeout bounds the flush of the last spans at exit, so that an unreachable collector
// does not hold a stopping process.
const stopTimeout = 5 * time.Second

// Stop calls a Start's stop with a bounded wait, logging a failure: what a main defers.
func Stop(stop func(context.Context) error, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
	defer cancel()
	if err := stop(ctx); err != nil {
		log.Warn("flush spans", "error", err)
	}
}
