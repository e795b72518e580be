package conform

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
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
	done bool // half-closed: nothing more may be sent (gRPC fails the call if it is)
}

// openAcked starts es on a StreamEventSource call of client asking for window. With
// autoAck, each event is acknowledged as delivered as soon as it is read.
func (k *kit) openAcked(ctx context.Context, client gateways.EventingClient, es *gateways.EventSource, window uint32, autoAck bool) (*ackedCall, error) {
	ctx, cancel := context.WithCancel(ctx)
	call, err := client.StreamEventSource(ctx)
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
	c := &ackedCall{stream: s, call: call}
	recv := call.Recv
	if autoAck {
		recv = c.recvAcking
	}
	go s.read(ctx, recv)
	return c, nil
}

// openStream is open over StreamEventSource, each event acknowledged as it is read: the
// checks written for StartEventSource (start-invalid, cancel, two-sources) run unchanged
// on the call the gateway-client prefers.
func (k *kit) openStream(ctx context.Context, client gateways.EventingClient, es *gateways.EventSource) *stream {
	c, err := k.openAcked(ctx, client, es, ackedWindow, true)
	if err != nil {
		return endedStream(es, err)
	}
	return c.stream
}

// endedStream is the stream of a call that could not be opened: ended, with err.
func endedStream(es *gateways.EventSource, err error) *stream {
	s := &stream{es: es, events: make(chan *gateways.Event), ended: make(chan struct{}), err: err, cancel: func() {}}
	close(s.ended)
	return s
}

// recvAcking receives an event and acknowledges it as delivered at once. A failed Send
// means the call is ending: the next Recv says why.
func (c *ackedCall) recvAcking() (*gateways.Event, error) {
	ev, err := c.call.Recv()
	if err == nil {
		c.send(gateways.Ack_OUTCOME_DELIVERED, ev.GetSeq())
	}
	return ev, err
}

func (c *ackedCall) send(outcome gateways.Ack_Outcome, seqs ...uint64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done {
		return errors.New("the call is half-closed")
	}
	return c.call.Send(&gateways.SourceControl{Control: &gateways.SourceControl_Ack{Ack: &gateways.Ack{Seqs: seqs, Outcome: outcome}}})
}

func (c *ackedCall) ack(outcome gateways.Ack_Outcome, seqs ...uint64) error {
	if err := c.send(outcome, seqs...); err != nil {
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
// server holds back at the window until an ack frees a slot (each time it fills, not only
// the first), acks are taken out of order and in batches, and the call stays healthy with
// an event left unacknowledged. A server that answers UNIMPLEMENTED gets a warning: clients
// fall back to StartEventSource.
func (k *kit) ackedDelivery(ctx context.Context) (Status, string) {
	es := source(k.name("acked"), k.opts.Valid)
	c, err := k.openAcked(ctx, k.client, es, ackedWindow, false)
	if err != nil {
		return k.ackedUnavailable(err)
	}
	defer c.close()
	r := &ackedRun{k: k, c: c, es: es, want: 1, window: ackedWindow}
	if _, err := r.recv(ctx, k.opts.Timeout); err != nil {
		if c.isUnimplemented() {
			return k.ackedUnavailable(c.err)
		}
		return Fail, "StreamEventSource(--valid): " + err.Error()
	}
	if err := r.second(ctx); err != nil {
		return Fail, "StreamEventSource(--valid), second event: " + err.Error()
	}
	steps := []func(context.Context) error{
		func(ctx context.Context) error { return r.hold(ctx, k.opts.Stall) },
		r.refill,
		r.retryAndBatch,
	}
	for _, step := range steps {
		if err := step(ctx); err != nil {
			return Fail, err.Error()
		}
	}
	why := fmt.Sprintf("StreamEventSource held back at a window of %d for %s and again each time it filled, took acks out of order and in a batch, and streamed on with an event unacknowledged",
		r.window, k.opts.Stall)
	if r.window < ackedWindow {
		why = fmt.Sprintf("StreamEventSource lowered the window asked (%d) to %d, as the proto allows (seq 2 came only once seq 1 was acknowledged); ", ackedWindow, r.window) +
			"it held back at it, took acks out of order and in a batch, and streamed on"
	}
	return Pass, why
}

// ackedRun is the acked-delivery check's view of its call: the seqs it read and what it
// acknowledged, and so how many events the server may have had unacknowledged.
type ackedRun struct {
	k       *kit
	c       *ackedCall
	es      *gateways.EventSource
	want    uint64   // the seq the next event must carry
	acked   int      // seqs acknowledged so far, of any outcome: each frees a slot
	window  int      // ackedWindow, or less when the server lowered it
	unacked []uint64 // seqs read and not acknowledged, oldest first
}

// recv waits up to wait for the next event, triggering its source meanwhile, and checks it.
func (r *ackedRun) recv(ctx context.Context, wait time.Duration) (*gateways.Event, error) {
	ev, err := r.k.nextWithin(ctx, r.c.stream, wait)
	if err != nil {
		return nil, err
	}
	return ev, r.take(ev)
}

// take checks an event's seq, name and that it fits the window.
func (r *ackedRun) take(ev *gateways.Event) error {
	if ev.GetSeq() != r.want {
		return fmt.Errorf("event with seq %d, want %d: seqs count the call's events from 1", ev.GetSeq(), r.want)
	}
	if ev.GetName() != r.es.GetName() {
		return fmt.Errorf("event name %q, want the source's %q", ev.GetName(), r.es.GetName())
	}
	// Before sending it, the server had sent seq-1 events and seen at most r.acked of them
	// acknowledged (it cannot have seen an ack the kit has not sent): this never fails a
	// server that keeps the window.
	if inFlight := int(ev.GetSeq()-1) - r.acked; inFlight >= ackedWindow {
		return fmt.Errorf("event seq %d came with %d events unacknowledged, window %d: the server must hold back until an ack frees a slot, every time the window fills",
			ev.GetSeq(), inFlight, ackedWindow)
	}
	r.want++
	r.unacked = append(r.unacked, ev.GetSeq())
	return nil
}

// ack acknowledges seqs with outcome.
func (r *ackedRun) ack(outcome gateways.Ack_Outcome, seqs ...uint64) error {
	if err := r.c.ack(outcome, seqs...); err != nil {
		return err
	}
	r.acked += len(seqs)
	r.unacked = slices.DeleteFunc(r.unacked, func(seq uint64) bool { return slices.Contains(seqs, seq) })
	return nil
}

// second reads seq 2. A server may lower the window, to 1 at the least: then seq 2 comes
// only once seq 1 is acknowledged, and the rest of the check runs with a window of 1.
func (r *ackedRun) second(ctx context.Context) error {
	_, err := r.recv(ctx, r.k.opts.Stall)
	if !errors.Is(err, errNoEvent) {
		return err
	}
	if err := r.ack(gateways.Ack_OUTCOME_DELIVERED, 1); err != nil {
		return err
	}
	if _, err := r.recv(ctx, r.k.opts.Timeout); err != nil {
		return fmt.Errorf("none within %s with seq 1 unacknowledged (window %d asked), and no second event even after seq 1 was acknowledged: %w",
			r.k.opts.Stall, ackedWindow, err)
	}
	r.window = 1
	return nil
}

// hold checks that, with the window full, no event comes for d however much the source is
// triggered.
func (r *ackedRun) hold(ctx context.Context, d time.Duration) error {
	stop := r.k.trigger(ctx, r.es)
	defer stop()
	quiet := time.NewTimer(d)
	defer quiet.Stop()
	for {
		select {
		case ev := <-r.c.events:
			if len(r.unacked) >= ackedWindow {
				return fmt.Errorf("window %d: event seq %d came while seqs %v were unacknowledged: the server must hold back until an ack frees a slot, every time the window fills",
					ackedWindow, ev.GetSeq(), r.unacked)
			}
			// Within the window asked: seq 2 was slow, not held back, and the server keeps
			// that window after all.
			if err := r.take(ev); err != nil {
				return err
			}
			r.window = len(r.unacked)
		case <-r.c.ended:
			return fmt.Errorf("with the window full, %v", ended(r.c.err))
		case <-ctx.Done():
			return errors.New("interrupted")
		case <-quiet.C:
			return nil
		}
	}
}

// refill acknowledges the unacknowledged seqs one by one, newest first (out of order), reads
// as many events as that freed, and checks that the server holds back again once the
// window is full: a server that keeps the window only until the first ack has sent more
// by then.
func (r *ackedRun) refill(ctx context.Context) error {
	freed := slices.Clone(r.unacked)
	slices.Reverse(freed)
	for _, seq := range freed {
		if err := r.ack(gateways.Ack_OUTCOME_DELIVERED, seq); err != nil {
			return err
		}
	}
	for range freed {
		if _, err := r.recv(ctx, r.k.opts.Timeout); err != nil {
			return fmt.Errorf("after acknowledging seqs %v: %w", freed, err)
		}
	}
	if err := r.hold(ctx, r.k.opts.Stall/4); err != nil {
		return fmt.Errorf("after acknowledging seqs %v and reading as many events, %w", freed, err)
	}
	return nil
}

// retryAndBatch retries the newest event, which frees its slot while the older ones stay
// unacknowledged, then acknowledges the rest in one batch, out of order.
func (r *ackedRun) retryAndBatch(ctx context.Context) error {
	newest := r.unacked[len(r.unacked)-1]
	if err := r.ack(gateways.Ack_OUTCOME_RETRY, newest); err != nil {
		return err
	}
	older := slices.Clone(r.unacked)
	if _, err := r.recv(ctx, r.k.opts.Timeout); err != nil {
		return fmt.Errorf("with seqs %v unacknowledged and %d retried: %w", older, newest, err)
	}
	batch := slices.Clone(r.unacked)
	slices.Reverse(batch)
	if err := r.ack(gateways.Ack_OUTCOME_DELIVERED, batch...); err != nil {
		return err
	}
	if _, err := r.recv(ctx, r.k.opts.Timeout); err != nil {
		return fmt.Errorf("after a batch ack of seqs %v: %w", batch, err)
	}
	return nil
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

// firstAcked opens the source check (on --valid) on StreamEventSource, acknowledging
// nothing, and waits for its first event, as firstEvent does: a source of the same config
// that the previous check cancelled may still be stopping on the server. Without a first
// event, ev is nil and the check's result is st and why: passed over (acked-delivery
// reports it) for a server that answers StreamEventSource UNIMPLEMENTED, failed otherwise.
// The call is to be closed either way.
func (k *kit) firstAcked(ctx context.Context, check string) (c *ackedCall, ev *gateways.Event, st Status, why string) {
	es := source(k.name(check), k.opts.Valid)
	open := func(ctx context.Context, client gateways.EventingClient, es *gateways.EventSource) *stream {
		var err error
		c, err = k.openAcked(ctx, client, es, ackedWindow, false)
		if err != nil {
			c = &ackedCall{stream: endedStream(es, err)}
		}
		return c.stream
	}
	_, ev, err := k.firstEvent(ctx, open, es)
	switch {
	case err == nil:
		return c, ev, Pass, ""
	case c.isUnimplemented():
		return c, nil, Pass, "not checked: StreamEventSource is UNIMPLEMENTED (see acked-delivery)"
	}
	return c, nil, Fail, "StreamEventSource(--valid): " + err.Error()
}

// closeSend half-closes the call: the client sends nothing more.
func (c *ackedCall) closeSend() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.done = true
	return c.call.CloseSend()
}

// awaitEnd waits up to wait for the call to end, reading (and dropping) the events that
// come meanwhile, and reports whether it ended and how many events came.
func (k *kit) awaitEnd(ctx context.Context, c *ackedCall, wait time.Duration) (bool, int) {
	timer := time.NewTimer(wait)
	defer timer.Stop()
	events := 0
	for {
		select {
		case <-c.events:
			events++
		case <-c.ended:
			return true, events
		case <-timer.C:
			return false, events
		case <-ctx.Done():
			return false, events
		}
	}
}

// halfClose checks that half-closing a StreamEventSource call ends it: the client has no
// more acks to send, so the server has nothing left to wait for (pkg/server ends it with
// OK). A server that ignores it only warns: the gateway-client cancels the call right
// after its CloseSend, so the harm is the source running (and its events waiting, lost)
// until that cancel comes, not a source left running for good. The check passes over a
// server that answers StreamEventSource UNIMPLEMENTED: acked-delivery reports that.
func (k *kit) halfClose(ctx context.Context) (Status, string) {
	c, ev, st, why := k.firstAcked(ctx, "half-close")
	defer c.close()
	if ev == nil {
		return st, why
	}
	if err := c.ack(gateways.Ack_OUTCOME_DELIVERED, ev.GetSeq()); err != nil {
		return Fail, "StreamEventSource(--valid): " + err.Error()
	}
	if err := c.closeSend(); err != nil {
		return Fail, "StreamEventSource(--valid): CloseSend after the first event: " + err.Error()
	}
	ended, events := k.awaitEnd(ctx, c, k.opts.Timeout)
	switch {
	case ctx.Err() != nil:
		return Fail, "interrupted"
	case !ended:
		return Warn, fmt.Sprintf("StreamEventSource left the call open for %s after the client half-closed it (having acknowledged seq %d), and sent %d more events meanwhile: "+
			"the server should end the call, as no more acks can come; the gateway-client cancels right after its CloseSend, so the source only runs (its events unacknowledged, lost) until then",
			k.opts.Timeout, ev.GetSeq(), events)
	}
	end := endStatus(c.err)
	if events > 0 {
		end += fmt.Sprintf(", %d event(s) already in flight read before it ended", events)
	}
	return Pass, "StreamEventSource: half-closing the call after the first event ends it (" + end + ")"
}

// endStatus says how a call ended, shortly.
func endStatus(err error) string {
	if errors.Is(err, io.EOF) {
		return "OK status"
	}
	return describe(err)
}

// badAck checks that an ack with OUTCOME_UNSPECIFIED ends the call with InvalidArgument
// naming it: a client that sends one is broken, and should hear so rather than have its
// events' fates guessed. Anything else warns, as does a server that takes it; it passes
// over a server that answers StreamEventSource UNIMPLEMENTED, as half-close does.
func (k *kit) badAck(ctx context.Context) (Status, string) {
	c, ev, st, why := k.firstAcked(ctx, "bad-ack")
	defer c.close()
	if ev == nil {
		return st, why
	}
	what := fmt.Sprintf("an ack of seq %d with OUTCOME_UNSPECIFIED", ev.GetSeq())
	// A failed Send means the call is already ending: its status says why.
	_ = c.send(gateways.Ack_OUTCOME_UNSPECIFIED, ev.GetSeq())
	ended, _ := k.awaitEnd(ctx, c, k.opts.Timeout)
	switch {
	case ctx.Err() != nil:
		return Fail, "interrupted"
	case !ended:
		return Warn, fmt.Sprintf("StreamEventSource took %s: the call was still open %s later; it should end with InvalidArgument naming what is wrong, so that a broken client is told",
			what, k.opts.Timeout)
	case status.Code(c.err) != codes.InvalidArgument:
		return Warn, fmt.Sprintf("StreamEventSource ended the call with %s after %s, InvalidArgument expected", endStatus(c.err), what)
	case strings.TrimSpace(status.Convert(c.err).Message()) == "":
		return Warn, fmt.Sprintf("StreamEventSource ended the call with InvalidArgument without a message after %s: the client cannot tell what was wrong", what)
	}
	return Pass, fmt.Sprintf("StreamEventSource ends the call after %s with %s", what, describe(c.err))
}
