package conform

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/eventgate/eventgate/protos/gateways"
)

// ackedWindow is the window the acked-delivery check asks for: small, so that the kit sees
// the server hold back at it.
const ackedWindow = 2

// ackedCall is a StreamEventSource call: its events are read in the background (into
// stream.events), acks go out through send.
type ackedCall struct {
	*stream
	call gateways.Eventing_StreamEventSourceClient
	mu   sync.Mutex
}

func (k *kit) openAcked(ctx context.Context, es *gateways.EventSource, window uint32) (*ackedCall, error) {
	ctx, cancel := context.WithCancel(ctx)
	call, err := k.client.StreamEventSource(ctx)
	if err == nil {
		err = call.Send(&gateways.SourceControl{Control: &gateways.SourceControl_Start{Start: &gateways.StartSource{Source: es, Window: window}}})
		if errors.Is(err, io.EOF) {
			// The server already ended the call (UNIMPLEMENTED answers at once, before
			// reading): the status comes with Recv.
			err = nil
		}
	}
	if err != nil {
		cancel()
		return nil, err
	}
	s := &stream{es: es, events: make(chan *gateways.Event), ended: make(chan struct{}), cancel: cancel}
	go s.read(ctx, call.Recv)
	return &ackedCall{stream: s, call: call}, nil
}

func (c *ackedCall) ack(outcome gateways.Ack_Outcome, seqs ...uint64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	err := c.call.Send(&gateways.SourceControl{Control: &gateways.SourceControl_Ack{Ack: &gateways.Ack{Seqs: seqs, Outcome: outcome}}})
	if err != nil {
		return fmt.Errorf("ack %v %v: the call ended: %w", outcome, seqs, ended(c.wait()))
	}
	return nil
}

// wait returns why the call ended, once it has (Send failing says it is ending).
func (c *ackedCall) wait() error {
	<-c.ended
	return c.err
}

// ackedDelivery checks StreamEventSource where the server offers it: seqs count from 1, the
// server holds back at the window until an ack frees a slot, acks are taken out of order
// and in batches, and the call stays healthy with an event left unacknowledged. A server
// that answers UNIMPLEMENTED gets a warning: clients fall back to StartEventSource.
func (k *kit) ackedDelivery(ctx context.Context) (Status, string) {
	es := source(k.name("acked"), k.opts.Valid)
	c, err := k.openAcked(ctx, es, ackedWindow)
	if err != nil {
		return k.ackedUnavailable(err)
	}
	defer c.close()
	want := uint64(1)
	next := func() (*gateways.Event, error) {
		ev, err := k.next(ctx, c.stream)
		if err != nil {
			return nil, err
		}
		if ev.GetSeq() != want {
			return nil, fmt.Errorf("event with seq %d, want %d: seqs count the call's events from 1", ev.GetSeq(), want)
		}
		if ev.GetName() != es.GetName() {
			return nil, fmt.Errorf("event name %q, want the source's %q", ev.GetName(), es.GetName())
		}
		want++
		return ev, nil
	}

	if _, err := next(); err != nil {
		if c.isUnimplemented() {
			return k.ackedUnavailable(c.err)
		}
		return Fail, "StreamEventSource(--valid): " + err.Error()
	}
	if _, err := next(); err != nil {
		return Fail, "StreamEventSource(--valid), second event: " + err.Error()
	}

	// Window full: no third event, however long the source is triggered.
	stop := k.trigger(ctx, es)
	quiet := time.NewTimer(k.opts.Stall)
	select {
	case ev := <-c.events:
		quiet.Stop()
		stop()
		return Fail, fmt.Sprintf("window %d: event seq %d came while seqs 1 and 2 were unacknowledged", ackedWindow, ev.GetSeq())
	case <-c.ended:
		quiet.Stop()
		stop()
		return Fail, fmt.Sprintf("with the window full, %v", ended(c.err))
	case <-ctx.Done():
		quiet.Stop()
		stop()
		return Fail, "interrupted"
	case <-quiet.C:
	}
	stop()

	// Out of order: 2, then 1. Each frees a slot.
	if err := c.ack(gateways.Ack_OUTCOME_DELIVERED, 2); err != nil {
		return Fail, err.Error()
	}
	if err := c.ack(gateways.Ack_OUTCOME_DELIVERED, 1); err != nil {
		return Fail, err.Error()
	}
	ev3, err := next()
	if err != nil {
		return Fail, "after acknowledging seqs 2 and 1: " + err.Error()
	}
	ev4, err := next()
	if err != nil {
		return Fail, "after acknowledging seqs 2 and 1, a second event: " + err.Error()
	}
	// Seq 3 stays unacknowledged while 4 is retried: the freed slot must bring another.
	if err := c.ack(gateways.Ack_OUTCOME_RETRY, ev4.GetSeq()); err != nil {
		return Fail, err.Error()
	}
	ev5, err := next()
	if err != nil {
		return Fail, fmt.Sprintf("with seq %d unacknowledged and %d retried: %v", ev3.GetSeq(), ev4.GetSeq(), err)
	}
	// One batch, out of order.
	if err := c.ack(gateways.Ack_OUTCOME_DELIVERED, ev5.GetSeq(), ev3.GetSeq()); err != nil {
		return Fail, err.Error()
	}
	if _, err := next(); err != nil {
		return Fail, "after a batch ack of seqs 5 and 3: " + err.Error()
	}
	return Pass, fmt.Sprintf("StreamEventSource held back at a window of %d for %s, took acks out of order and in a batch, and streamed on with an event unacknowledged",
		ackedWindow, k.opts.Stall)
}

func (c *ackedCall) isUnimplemented() bool {
	select {
	case <-c.ended:
		return status.Code(c.err) == codes.Unimplemented
	default:
		return false
	}
}

// ackedUnavailable judges a StreamEventSource call that could not start.
func (k *kit) ackedUnavailable(err error) (Status, string) {
	if status.Code(err) == codes.Unimplemented {
		return Warn, "no acknowledged delivery: StreamEventSource is UNIMPLEMENTED, so clients fall back to StartEventSource and an event counts as handled once it is on the stream"
	}
	return Fail, "StreamEventSource: " + describe(err)
}
