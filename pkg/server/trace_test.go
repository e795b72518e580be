package server

import (
	"context"
	"reflect"
	"testing"

	"github.com/eventgate/eventgate/pkg/tracing"
)

// With span export off a source emits straight onto the stream: no wrapper, so tracing
// costs nothing per event.
func TestWithSpansOffIsEmitItself(t *testing.T) {
	if tracing.Enabled() {
		t.Fatal("span export is on in this test process")
	}
	emit := func(context.Context, Event) error { return nil }
	if got := withSpans("source", emit); reflect.ValueOf(got).Pointer() != reflect.ValueOf(emit).Pointer() {
		t.Error("withSpans wrapped emit with span export off")
	}
}
