package server

import (
	"context"
	"errors"
	"io"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/eventgate/eventgate/protos/gateways"
)

const (
	// DefaultWindow is the window of a StreamEventSource call whose start asks for 0: the
	// most events sent and not yet acknowledged.
	DefaultWindow = 256
	// MaxWindow caps the window a client may ask for, so that a call's unacknowledged
	// events (and the memory the source holds for them) stay bounded whatever it asks.
	MaxWindow = 10000
)

// Window is the window the server uses for a start that asks for asked.
func Window(asked uint32) int {
	switch {
	case asked == 0:
		return DefaultWindow
	case asked > MaxWindow:
		return MaxWindow
	}
	return int(asked)
}

// StreamEventSource runs the source like StartEventSource, numbers its events (seq, from
// 1) and holds its Emit while window events are unacknowledged; a goroutine reads the
// client's acks meanwhile and reports each event's fate to its OnFate. The call ends when
// the client cancels or half-closes (no more acks can come), when the source fails, or
// with InvalidArgument when the client breaks the protocol. Events unacknowledged then
// are reported Lost.
func (e *eventing) StreamEventSource(stream gateways.Eventing_StreamEventSourceServer) error {
	first, err := stream.Recv()
	switch {
	case errors.Is(err, io.EOF):
		return status.Error(codes.InvalidArgument, "StreamEventSource: the first message must be a start (SourceControl.start), got none")
	case err != nil:
		return err
	}
	start := first.GetStart()
	if start == nil {
		return status.Error(codes.InvalidArgument, "StreamEventSource: the first message must be a start (SourceControl.start), got an ack")
	}
	es := start.GetSource()
	if es == nil {
		return status.Error(codes.InvalidArgument, "StreamEventSource: start.source is missing")
	}
	src, err := e.parse(es)
	if err != nil {
		return status.Error(codes.InvalidArgument, err.Error())
	}
	window := Window(start.GetWindow())

	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	defer context.AfterFunc(e.stopping, cancel)()

	log := e.log.With("eventSource", es.GetName(), "eventSourceID", es.GetId())
	log.Info("event source started", "activeSources", e.active.Add(1), "acknowledged", true, "window", window)
	defer func() { log.Info("event source stopped", "activeSources", e.active.Add(-1)) }()

	out := newWindowSender(es.GetName(), stream, window)
	// The reader may outlive this call by a moment: Recv returns once gRPC ends the
	// stream after the handler returns. The server waits for it before Serve returns.
	broken := make(chan error, 1)
	e.readers.Add(1)
	go func() {
		defer e.readers.Done()
		defer cancel()
		if err := readAcks(stream, out); err != nil {
			broken <- err
		}
	}()

	err = runSource(withLogger(ctx, log), src, withSpans(es.GetName(), out.emit))
	out.close()
	select {
	case err := <-broken:
		log.Warn("client broke the acknowledgement protocol", "error", err)
		return err
	default:
	}
	return e.callResult(stream.Context(), log, es, err)
}

// readAcks hands the client's acks to out until the client half-closes or the call ends
// (nil), or until it breaks the protocol (an InvalidArgument status).
func readAcks(stream gateways.Eventing_StreamEventSourceServer, out *sender) error {
	for {
		msg, err := stream.Recv()
		if err != nil {
			return nil
		}
		switch c := msg.GetControl().(type) {
		case *gateways.SourceControl_Ack:
			if err := out.ack(c.Ack); err != nil {
				return err
			}
		case *gateways.SourceControl_Start:
			return status.Error(codes.InvalidArgument, "StreamEventSource: start may only be the first message of a call")
		default:
			return status.Error(codes.InvalidArgument, "StreamEventSource: a message carries neither a start nor an ack")
		}
	}
}
