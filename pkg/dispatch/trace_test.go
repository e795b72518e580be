package dispatch

import (
	"context"
	"net/http"
	"testing"

	cloudevents "github.com/cloudevents/sdk-go/v2"

	"github.com/eventgate/eventgate/pkg/tracing"
)

const parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

// With span export off, a delivery passes the event's trace context on as the W3C headers
// as it is, and an event without one costs no allocation.
func TestTraceDeliveryWithExportOff(t *testing.T) {
	if tracing.Enabled() {
		t.Fatal("span export is on in this test process")
	}
	ev := cloudevents.NewEvent()
	ev.SetID("1")
	t.Run("no trace context", func(t *testing.T) {
		ctx, h := context.Background(), http.Header{}
		if got, _ := traceDelivery(ctx, ev, "sensor", h); got != ctx || len(h) != 0 {
			t.Errorf("the delivery's context changed, or headers %v were set, for an event without trace context", h)
		}
		if n := testing.AllocsPerRun(100, func() {
			_, end := traceDelivery(ctx, ev, "sensor", h)
			end(nil)
		}); n != 0 {
			t.Errorf("%v allocations per delivery, want 0", n)
		}
	})
	t.Run("trace context", func(t *testing.T) {
		traced := ev.Clone()
		traced.SetExtension(tracing.TraceParent, parent)
		traced.SetExtension(tracing.TraceState, "vendor=1")
		h := http.Header{}
		_, end := traceDelivery(context.Background(), traced, "sensor", h)
		end(nil)
		if h.Get("Traceparent") != parent || h.Get("Tracestate") != "vendor=1" {
			t.Errorf("headers %v, want the event's traceparent and tracestate", h)
		}
	})
}
