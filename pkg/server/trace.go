package server

import (
	"context"
	"crypto/rand"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/eventgate/eventgate/pkg/tracing"
)

// withSpans is emit as the source's call uses it: emit itself while span export is off, so
// that it costs nothing then; with export on, each event gets a "receive" span, from the
// emit to its fate, a child of the trace context the source found on the message (a root
// when there was none), and within it a "stream" span for getting onto the stream. The
// event travels on as the stream span's child.
func withSpans(source string, emit Emit) Emit {
	t := tracing.Tracer()
	if t == nil {
		return emit
	}
	return func(ctx context.Context, ev Event) error {
		if ev.ID == "" {
			ev.ID = rand.Text() // as emit would, but the span names it
		}
		attrs := trace.WithAttributes(attribute.String("eventgate.event_source", source), attribute.String("eventgate.event_id", ev.ID))
		rctx, receive := t.Start(tracing.Extract(ctx, ev.Metadata), "receive", trace.WithSpanKind(trace.SpanKindConsumer), attrs)
		sctx, stream := t.Start(rctx, "stream", trace.WithSpanKind(trace.SpanKindProducer), attrs)
		ev.Metadata = tracing.Inject(sctx, ev.Metadata)
		onFate := ev.OnFate
		ev.OnFate = func(f Fate) {
			receive.SetAttributes(attribute.String("eventgate.fate", f.String()))
			if f != FateDelivered && f != FateDropped {
				receive.SetStatus(codes.Error, f.String())
			}
			receive.End()
			if onFate != nil {
				onFate(f)
			}
		}
		err := emit(ctx, ev)
		if err != nil {
			stream.RecordError(err)
			stream.SetStatus(codes.Error, err.Error())
			receive.SetStatus(codes.Error, "not emitted")
			receive.End() // emit refused it: no fate comes
		}
		stream.End()
		return err
	}
}
