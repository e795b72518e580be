package testenv

import (
	"context"
	"errors"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/eventgate/eventgate/pkg/server"
	"github.com/eventgate/eventgate/protos/gateways"
)

// AckedStream is a running StreamEventSource call: its events are read in the background
// like a Stream's (up to the server's window of them ahead of the test), and the test
// acknowledges them with Ack.
type AckedStream struct {
	*Stream
	call gateways.Eventing_StreamEventSourceClient
	mu   sync.Mutex // one Send at a time
}

// OpenAckedStream starts es on the gateway server behind client with a StreamEventSource
// call asking for window (0: the server's default). It ends with the test, or with Close.
func OpenAckedStream(t testing.TB, client gateways.EventingClient, es *gateways.EventSource, window uint32) *AckedStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	call, err := client.StreamEventSource(ctx)
	if err != nil {
		cancel()
		t.Fatalf("stream event source %q: %v", es.GetName(), err)
	}
	start := &gateways.SourceControl{Control: &gateways.SourceControl_Start{Start: &gateways.StartSource{Source: es, Window: window}}}
	// io.EOF: the server ended the call already; its status comes with the events' end.
	if err := call.Send(start); err != nil && !errors.Is(err, io.EOF) {
		cancel()
		t.Fatalf("start event source %q: %v", es.GetName(), err)
	}
	s := &AckedStream{Stream: readStream(ctx, cancel, es.GetName(), server.Window(window), call.Recv), call: call}
	t.Cleanup(s.Close)
	return s
}

// Send sends one control message as is (a test of bad input sends what it likes).
func (s *AckedStream) Send(msg *gateways.SourceControl) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.call.Send(msg)
}

// Ack acknowledges seqs, in one message, with outcome.
func (s *AckedStream) Ack(t testing.TB, outcome gateways.Ack_Outcome, seqs ...uint64) {
	t.Helper()
	msg := &gateways.SourceControl{Control: &gateways.SourceControl_Ack{Ack: &gateways.Ack{Seqs: seqs, Outcome: outcome}}}
	if err := s.Send(msg); err != nil {
		t.Fatalf("ack %v %v: %v", outcome, seqs, err)
	}
}

// CloseSend half-closes the call: the client sends no more acks.
func (s *AckedStream) CloseSend() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.call.CloseSend()
}

// End waits up to timeout for the call to end and returns the error it ended with (a
// status error; io.EOF when the server ended it with OK), failing the test if it does not
// end. Events not yet taken are discarded.
func (s *Stream) End(t testing.TB, timeout time.Duration) error {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		select {
		case <-s.events:
		case <-s.ended:
			return s.err
		case <-timer.C:
			t.Fatalf("stream %q did not end within %s", s.name, timeout)
			return nil
		}
	}
}
