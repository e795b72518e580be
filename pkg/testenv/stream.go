package testenv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/eventgate/eventgate/protos/gateways"
)

// Stream is a running StartEventSource call, read in the background so that a test waits
// for each event with a deadline instead of blocking on Recv.
type Stream struct {
	name   string // the event source's, which every event must carry
	events chan *gateways.Event
	ended  chan struct{}
	err    error // why the stream ended; read after ended is closed
	cancel context.CancelFunc
}

// ErrNoEvent is TryNext's error when no event came in time.
var ErrNoEvent = errors.New("no event within the deadline")

// OpenStream starts es on the gateway server behind client. The stream ends with the test,
// or earlier with Close. Events are read from the call only as the test asks for them, so
// a test that does not read holds the gateway back (gRPC flow control).
func OpenStream(t testing.TB, client gateways.EventingClient, es *gateways.EventSource) *Stream {
	t.Helper()
	return OpenBufferedStream(t, client, es, 0)
}

// OpenBufferedStream is OpenStream with up to buffer events read ahead of the test, for
// tests of a broker that must not be held back while the test checks an earlier event.
func OpenBufferedStream(t testing.TB, client gateways.EventingClient, es *gateways.EventSource, buffer int) *Stream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	call, err := client.StartEventSource(ctx, es)
	if err != nil {
		cancel()
		t.Fatalf("start event source %q: %v", es.GetName(), err)
	}
	s := readStream(ctx, cancel, es.GetName(), buffer, call.Recv)
	t.Cleanup(s.Close)
	return s
}

// readStream is a Stream whose events come from recv, read in the background.
func readStream(ctx context.Context, cancel context.CancelFunc, name string, buffer int, recv func() (*gateways.Event, error)) *Stream {
	s := &Stream{name: name, events: make(chan *gateways.Event, buffer), ended: make(chan struct{}), cancel: cancel}
	go func() {
		defer close(s.ended)
		for {
			ev, err := recv()
			if err != nil {
				s.err = err
				return
			}
			select {
			case s.events <- ev:
			case <-ctx.Done():
				s.err = ctx.Err()
				return
			}
		}
	}()
	return s
}

// TryNext returns the next event, ErrNoEvent when none came within timeout, or the error
// that ended the stream. An event that does not carry the source's name is an error.
func (s *Stream) TryNext(timeout time.Duration) (*gateways.Event, error) {
	ev, err := s.tryNext(timeout)
	if err == nil && ev.GetName() != s.name {
		return nil, fmt.Errorf("event of source %q on the stream of %q", ev.GetName(), s.name)
	}
	return ev, err
}

func (s *Stream) tryNext(timeout time.Duration) (*gateways.Event, error) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case ev := <-s.events:
		return ev, nil
	case <-s.ended:
		// The reader is gone, so what it read ahead is all there is: that comes first.
		select {
		case ev := <-s.events:
			return ev, nil
		default:
		}
		return nil, fmt.Errorf("stream ended: %w", s.err)
	case <-timer.C:
		return nil, ErrNoEvent
	}
}

// Next returns the next event, failing the test when none comes within timeout.
func (s *Stream) Next(t testing.TB, timeout time.Duration) *gateways.Event {
	t.Helper()
	ev, err := s.TryNext(timeout)
	if err != nil {
		t.Fatalf("next event: %v", err)
	}
	return ev
}

// Queued returns an event already read from the call, or nil when there is none: a test
// that has read every event it expects checks with it that no other came.
func (s *Stream) Queued() *gateways.Event {
	select {
	case ev := <-s.events:
		return ev
	default:
		return nil
	}
}

// NextJSON returns the next event's payload decoded into a T, failing the test when none
// comes within timeout or the event is not JSON.
func NextJSON[T any](t testing.TB, s *Stream, timeout time.Duration) T {
	t.Helper()
	return DecodeJSON[T](t, s.Next(t, timeout))
}

// DecodeJSON returns ev's payload decoded into a T, failing the test unless ev is JSON.
func DecodeJSON[T any](t testing.TB, ev *gateways.Event) T {
	t.Helper()
	var v T
	if ev.GetContentType() != "application/json" {
		t.Fatalf("event content type %q, want application/json (payload %q)", ev.GetContentType(), ev.GetPayload())
	}
	if err := json.Unmarshal(ev.GetPayload(), &v); err != nil {
		t.Fatalf("event payload %q: %v", ev.GetPayload(), err)
	}
	return v
}

// Close cancels the call (the server stops the source) and waits for the reader. The
// server's side of the source may still be stopping when Close returns.
func (s *Stream) Close() {
	s.cancel()
	<-s.ended
}
