package dispatch

import (
	"context"
	"net/http"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/eventgate/eventgate/pkg/tracing"
)

// traceDelivery prepares one delivery attempt of ev to target. The event's trace context
// (the CloudEvents distributed tracing extension, which binary mode sends as
// ce-traceparent) also goes into h (an HTTP request's headers; nil for other transports)
// as the plain W3C traceparent and tracestate headers, which is what the sensor's tracer
// reads. With span export on, the attempt is a "deliver" span, a child of the event's
// trace context, and the headers name that span. end closes the span with the attempt's
// outcome.
func traceDelivery(ctx context.Context, ev cloudevents.Event, target string, h http.Header) (_ context.Context, end func(error)) {
	parent, _ := ev.Extensions()[tracing.TraceParent].(string)
	t := tracing.Tracer()
	if t == nil {
		if parent == "" || h == nil {
			return ctx, noEnd
		}
		h["Traceparent"] = []string{parent}
		if state, _ := ev.Extensions()[tracing.TraceState].(string); state != "" {
			h["Tracestate"] = []string{state}
		}
		return ctx, noEnd
	}
	ctx, span := t.Start(tracing.Extract(ctx, traceMetadata(ev)), "deliver", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("eventgate.sensor", target), attribute.String("eventgate.event_id", ev.ID())))
	if h != nil {
		propagation.TraceContext{}.Inject(ctx, propagation.HeaderCarrier(h))
	}
	return ctx, func(err error) { endSpan(span, err) }
}

// traceBatch is traceDelivery for a batch: a "deliver" span per event (with export on),
// and no plain traceparent header, as the events may belong to different traces; each
// carries its own in the batch.
func traceBatch(ctx context.Context, evs []cloudevents.Event, target string) (end func(error)) {
	t := tracing.Tracer()
	if t == nil {
		return noEnd
	}
	spans := make([]trace.Span, len(evs))
	for i, ev := range evs {
		_, spans[i] = t.Start(tracing.Extract(ctx, traceMetadata(ev)), "deliver", trace.WithSpanKind(trace.SpanKindClient),
			trace.WithAttributes(attribute.String("eventgate.sensor", target), attribute.String("eventgate.event_id", ev.ID()),
				attribute.Int("eventgate.batch_size", len(evs))))
	}
	return func(err error) {
		for _, s := range spans {
			endSpan(s, err)
		}
	}
}

func noEnd(error) {}

func endSpan(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// traceMetadata is ev's trace context in the metadata form tracing reads.
func traceMetadata(ev cloudevents.Event) map[string]string {
	parent, _ := ev.Extensions()[tracing.TraceParent].(string)
	if parent == "" {
		return nil
	}
	state, _ := ev.Extensions()[tracing.TraceState].(string)
	return map[string]string{tracing.TraceParent: parent, tracing.TraceState: state}
}
