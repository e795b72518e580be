package server

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
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
	err = runSource(withLogger(ctx, log), src, out.emit)
	out.close()

	switch {
	case e.stopping.Err() != nil:
		return status.Error(codes.Unavailable, "gateway server is shutting down")
	case stream.Context().Err() != nil:
		return status.FromContextError(stream.Context().Err()).Err()
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

// sender serialises emits onto one stream. gRPC allows one Send at a time; a one-slot
// channel works as a lock that a waiting emitter can abandon when its context ends. Send
// itself blocks on HTTP/2 flow control, which is how a slow client slows the source down.
type sender struct {
	name   string
	stream gateways.Eventing_StartEventSourceServer
	turn   chan struct{}
	closed atomic.Bool
}

func newSender(name string, stream gateways.Eventing_StartEventSourceServer) *sender {
	return &sender{name: name, stream: stream, turn: make(chan struct{}, 1)}
}

func (s *sender) emit(ctx context.Context, ev Event) error {
	msg := &gateways.Event{
		Name:        s.name,
		Payload:     ev.Payload,
		Id:          ev.ID,
		ContentType: ev.ContentType,
		Metadata:    ev.Metadata,
	}
	if msg.Id == "" {
		msg.Id = rand.Text()
	}
	when := ev.Time
	if when.IsZero() {
		when = time.Now()
	}
	msg.Time = timestamppb.New(when)

	select {
	case s.turn <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	case <-s.stream.Context().Done():
		return errStreamClosed
	}
	defer func() { <-s.turn }()
	if s.closed.Load() {
		return errStreamClosed
	}
	if err := s.stream.Send(msg); err != nil {
		return fmt.Errorf("%w: %v", errStreamClosed, err)
	}
	return nil
}

// close makes later emits fail, and waits for a Send in flight: a source's stray
// goroutine must not Send after the call has returned. That Send ends when the client
// reads or goes away, or when a server stop closes the connection.
func (s *sender) close() {
	s.closed.Store(true)
	s.turn <- struct{}{}
	<-s.turn
}
