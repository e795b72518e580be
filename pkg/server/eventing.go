package server

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/eventgate/eventgate/protos/gateways"
)

// eventing serves the Eventing contract for one Gateway.
type eventing struct {
	gateways.UnimplementedEventingServer

	gw  Gateway
	log *slog.Logger
	// stopping ends when the server shuts down; every running source derives from it so a
	// stop ends the sources, and with them their streams, before GracefulStop waits on them.
	stopping context.Context
	active   atomic.Int64
	// readers are the StreamEventSource calls' ack readers, which end just after their call.
	readers sync.WaitGroup
}

// ValidateEventSource answers is_valid=false with the parse error as the reason; the error
// return is kept for failures of the call itself.
func (e *eventing) ValidateEventSource(_ context.Context, es *gateways.EventSource) (*gateways.ValidEventSource, error) {
	if _, err := e.parse(es); err != nil {
		e.log.Info("event source is invalid", "eventSource", es.GetName(), "reason", err.Error())
		return &gateways.ValidEventSource{IsValid: false, Reason: err.Error()}, nil
	}
	return &gateways.ValidEventSource{IsValid: true}, nil
}

// StartEventSource runs the source in the call's goroutine and streams what it emits.
func (e *eventing) StartEventSource(es *gateways.EventSource, stream gateways.Eventing_StartEventSourceServer) error {
	src, err := e.parse(es)
	if err != nil {
		return status.Error(codes.InvalidArgument, err.Error())
	}
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	defer context.AfterFunc(e.stopping, cancel)()

	log := e.log.With("eventSource", es.GetName(), "eventSourceID", es.GetId())
	log.Info("event source started", "activeSources", e.active.Add(1))
	defer func() { log.Info("event source stopped", "activeSources", e.active.Add(-1)) }()

	out := newSender(es.GetName(), stream)
	err = runSource(withLogger(ctx, log), src, withSpans(es.GetName(), out.emit))
	out.close()
	return e.callResult(stream.Context(), log, es, err)
}

// callResult is the status a source's call ends with once the source returned err.
func (e *eventing) callResult(call context.Context, log *slog.Logger, es *gateways.EventSource, err error) error {
	switch {
	case e.stopping.Err() != nil:
		return status.Error(codes.Unavailable, "gateway server is shutting down")
	case call.Err() != nil:
		return status.FromContextError(call.Err()).Err()
	case err != nil:
		log.Error("event source failed", "error", err)
		if _, ok := status.FromError(err); ok {
			return err
		}
		return status.Errorf(codes.Unavailable, "event source %q failed: %v", es.GetName(), err)
	}
	return nil
}

// parse runs the gateway's Parse, turning a panic on bad input into an error: a broken
// config must never take the server down.
func (e *eventing) parse(es *gateways.EventSource) (src Source, err error) {
	defer func() {
		if p := recover(); p != nil {
			e.log.Error("panic while parsing an event source", "eventSource", es.GetName(), "panic", p, "stack", string(debug.Stack()))
			src, err = nil, fmt.Errorf("%s: configuration could not be parsed (internal error: %v)", e.gw.Type(), p)
		}
	}()
	return e.gw.Parse(es.GetName(), es.GetData())
}

// runSource starts src, turning a panic into an error for the same reason as parse.
func runSource(ctx context.Context, src Source, emit Emit) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v\n%s", p, debug.Stack())
		}
	}()
	return src.Start(ctx, emit)
}

// errStreamClosed is returned by Emit once the source's call has ended.
var errStreamClosed = errors.New("event stream is closed")

// eventStream is the sending half of either call: StartEventSource's and
// StreamEventSource's server streams both have it.
type eventStream interface {
	Send(*gateways.Event) error
	Context() context.Context
}

// sender serialises emits onto one stream. gRPC allows one Send at a time; a one-slot
// channel works as a lock that a waiting emitter can abandon when its context ends. Send
// itself blocks on HTTP/2 flow control, which is how a slow client slows the source down.
//
// With a window (StreamEventSource) it also numbers the events and keeps the fate callback
// of each one sent and not yet acknowledged: slots holds one token per such event, so an
// emit waits while window events are unacknowledged and pending never holds more.
type sender struct {
	name   string
	stream eventStream
	turn   chan struct{}
	closed atomic.Bool
	ended  chan struct{} // closed by close: wakes emits waiting for a slot

	slots   chan struct{} // nil on StartEventSource
	mu      sync.Mutex
	next    uint64                // the last seq given out
	pending map[uint64]func(Fate) // sent, not yet acknowledged; nil once closed
}

func newSender(name string, stream eventStream) *sender {
	return &sender{name: name, stream: stream, turn: make(chan struct{}, 1), ended: make(chan struct{})}
}

// newWindowSender is a sender for a StreamEventSource call with window (already bounded).
func newWindowSender(name string, stream eventStream, window int) *sender {
	s := newSender(name, stream)
	s.slots = make(chan struct{}, window)
	s.pending = make(map[uint64]func(Fate), window)
	return s
}

func (s *sender) emit(ctx context.Context, ev Event) error {
	msg := &gateways.Event{
		Name:        s.name,
		Payload:     ev.Payload,
		Id:          ev.ID,
		ContentType: ev.ContentType,
		Metadata:    ev.Metadata,
		OrderingKey: ev.OrderingKey,
	}
	if msg.Id == "" {
		msg.Id = rand.Text()
	}
	when := ev.Time
	if when.IsZero() {
		when = time.Now()
	}
	msg.Time = timestamppb.New(when)

	if s.slots != nil {
		select {
		case s.slots <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		case <-s.ended:
			return errStreamClosed
		case <-s.stream.Context().Done():
			return errStreamClosed
		}
	}
	select {
	case s.turn <- struct{}{}:
	case <-ctx.Done():
		s.freeSlot()
		return ctx.Err()
	case <-s.stream.Context().Done():
		s.freeSlot()
		return errStreamClosed
	}
	defer func() { <-s.turn }()
	if s.closed.Load() {
		s.freeSlot()
		return errStreamClosed
	}
	if s.slots == nil {
		if err := s.stream.Send(msg); err != nil {
			return fmt.Errorf("%w: %v", errStreamClosed, err)
		}
		if ev.OnFate != nil {
			ev.OnFate(FateDelivered)
		}
		return nil
	}

	onFate := ev.OnFate
	if onFate == nil {
		onFate = func(Fate) {}
	}
	s.mu.Lock()
	s.next++
	msg.Seq = s.next
	s.pending[msg.Seq] = onFate
	s.mu.Unlock()
	if err := s.stream.Send(msg); err != nil {
		s.mu.Lock()
		_, unacked := s.pending[msg.Seq]
		delete(s.pending, msg.Seq)
		s.mu.Unlock()
		if !unacked {
			// The client acknowledged it before Send reported the failure: its fate is
			// known and was reported, so the emit succeeded.
			return nil
		}
		s.freeSlot()
		return fmt.Errorf("%w: %v", errStreamClosed, err)
	}
	return nil
}

func (s *sender) freeSlot() {
	if s.slots != nil {
		<-s.slots
	}
}

// ack reports the fate of the events with seqs, in the order given. An outcome that is not
// one of the three, or a seq that is not an unacknowledged event of this call, is the
// client's error: the call ends with InvalidArgument naming it. Once the call is closing
// (close reported its unacknowledged events Lost), acks are ignored: they were on their way
// when the source ended, and ending the call with InvalidArgument for them would make the
// client take a source that failed for a passing reason as invalid.
func (s *sender) ack(a *gateways.Ack) error {
	var fate Fate
	switch a.GetOutcome() {
	case gateways.Ack_OUTCOME_DELIVERED:
		fate = FateDelivered
	case gateways.Ack_OUTCOME_RETRY:
		fate = FateRetry
	case gateways.Ack_OUTCOME_DROPPED:
		fate = FateDropped
	default:
		return status.Errorf(codes.InvalidArgument, "ack of seqs %v: outcome must be OUTCOME_DELIVERED, OUTCOME_RETRY or OUTCOME_DROPPED, got %v", a.GetSeqs(), a.GetOutcome())
	}
	for _, seq := range a.GetSeqs() {
		s.mu.Lock()
		if s.pending == nil {
			s.mu.Unlock()
			return nil
		}
		onFate, ok := s.pending[seq]
		delete(s.pending, seq)
		last := s.next
		s.mu.Unlock()
		if !ok {
			if seq == 0 || seq > last {
				return status.Errorf(codes.InvalidArgument, "ack for seq %d: no event with that seq was sent on this call (the last one sent is %d)", seq, last)
			}
			return status.Errorf(codes.InvalidArgument, "ack for seq %d: that event was already acknowledged", seq)
		}
		s.freeSlot()
		onFate(fate)
	}
	return nil
}

// close makes later emits fail, and waits for a Send in flight: a source's stray
// goroutine must not Send after the call has returned. That Send ends when the client
// reads or goes away, or when a server stop closes the connection. Events still
// unacknowledged are then reported Lost, in the order they were sent.
func (s *sender) close() {
	if !s.closed.Swap(true) {
		close(s.ended)
	}
	s.turn <- struct{}{}
	<-s.turn

	s.mu.Lock()
	lost := s.pending
	s.pending = nil
	s.mu.Unlock()
	seqs := make([]uint64, 0, len(lost))
	for seq := range lost {
		seqs = append(seqs, seq)
	}
	slices.Sort(seqs)
	for _, seq := range seqs {
		lost[seq](FateLost)
	}
}
