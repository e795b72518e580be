package testenv

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/eventgate/eventgate/protos/gateways"
)

// Stream is a running StartEventSource call, read in the background so that a test waits
// for each event with a deadline instead of blocking on Recv.
type Stream struct {
	events chan *gateways.Event
	ended  chan struct{}
	err    error // why the stream ended; read after ended is closed
	cancel context.CancelFunc
}

// ErrNoEvent is TryNext's error when no event came in time.
var ErrNoEvent = errors.New("no event within the deadline")

// OpenStream starts es on the gateway server behind client. The stream ends with the test,
// or earlier with Close.
func OpenStream(t testing.TB, client gateways.EventingClient, es *gateways.EventSource) *Stream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	call, err := client.StartEventSource(ctx, es)
	if err != nil {
		cancel()
		t.Fatalf("start event source %q: %v", es.GetName(), err)
	}
	s := &Stream{events: make(chan *gateways.Event), ended: make(chan struct{}), cancel: cancel}
	go func() {
		defer close(s.ended)
		for {
			ev, err := call.Recv()
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
	t.Cleanup(s.Close)
	return s
}

// TryNext returns the next event, ErrNoEvent when none came within timeout, or the error
// that ended the stream.
func (s *Stream) TryNext(timeout time.Duration) (*gateways.Event, error) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case ev := <-s.events:
		return ev, nil
	case <-s.ended:
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

// Close cancels the call (the server stops the source) and waits for the reader. The
// server's side of the source may still be stopping when Close returns.
func (s *Stream) Close() {
	s.cancel()
	<-s.ended
}
