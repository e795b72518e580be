package conform

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/eventgate/eventgate/protos/gateways"
)

type kit struct {
	opts   Options
	client gateways.EventingClient
}

func (k *kit) name(suffix string) string {
	if suffix == "" {
		return k.opts.Name
	}
	return k.opts.Name + "-" + suffix
}

// validate calls ValidateEventSource with the timeout.
func (k *kit) validate(ctx context.Context, client gateways.EventingClient, es *gateways.EventSource) (*gateways.ValidEventSource, error) {
	ctx, cancel := context.WithTimeout(ctx, k.opts.Timeout)
	defer cancel()
	resp, err := client.ValidateEventSource(ctx, es)
	if ctx.Err() != nil {
		return nil, fmt.Errorf("no answer within %s", k.opts.Timeout)
	}
	if err != nil {
		return nil, errors.New(describe(err))
	}
	return resp, nil
}

func (k *kit) validateValid(ctx context.Context) (Status, string) {
	resp, err := k.validate(ctx, k.client, source(k.name(""), k.opts.Valid))
	switch {
	case err != nil:
		return Fail, "ValidateEventSource(--valid): " + err.Error()
	case !resp.GetIsValid():
		return Fail, fmt.Sprintf("ValidateEventSource refused --valid: %q", resp.GetReason())
	}
	return Pass, "ValidateEventSource accepts --valid"
}

func (k *kit) validateInvalid(ctx context.Context) (Status, string) {
	resp, err := k.validate(ctx, k.client, source(k.name(""), k.opts.Invalid))
	switch {
	case err != nil:
		return Fail, "ValidateEventSource(--invalid): " + err.Error()
	case resp.GetIsValid():
		return Fail, "ValidateEventSource accepted --invalid"
	case strings.TrimSpace(resp.GetReason()) == "":
		return Fail, "ValidateEventSource refused --invalid without a reason: a user cannot tell what to fix"
	}
	return Pass, fmt.Sprintf("ValidateEventSource refuses --invalid: %q", resp.GetReason())
}

// stream is a StartEventSource call read in the background.
type stream struct {
	es     *gateways.EventSource
	events chan *gateways.Event
	ended  chan struct{}
	err    error // why it ended, once ended is closed
	cancel context.CancelFunc
}

// opener starts es on a call of client and reads its events: openStart on
// StartEventSource, openStream on StreamEventSource.
type opener func(ctx context.Context, client gateways.EventingClient, es *gateways.EventSource) *stream

func (k *kit) openStart(ctx context.Context, client gateways.EventingClient, es *gateways.EventSource) *stream {
	return k.open(ctx, client, es, true)
}

// open starts es; with read, a goroutine reads its events (the caller receives them from
// events), without, nothing reads it: a client that stopped reading.
func (k *kit) open(ctx context.Context, client gateways.EventingClient, es *gateways.EventSource, read bool) *stream {
	ctx, cancel := context.WithCancel(ctx)
	s := &stream{es: es, events: make(chan *gateways.Event), ended: make(chan struct{}), cancel: cancel}
	call, err := client.StartEventSource(ctx, es)
	if err != nil {
		s.err = err
		close(s.ended)
		return s
	}
	if !read {
		go func() {
			<-ctx.Done()
			close(s.ended)
		}()
		return s
	}
	go s.read(ctx, call.Recv)
	return s
}

// read hands what recv returns to events until the call ends.
func (s *stream) read(ctx context.Context, recv func() (*gateways.Event, error)) {
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
}

// close cancels the call, which is how a client stops a source, and waits for the reader.
func (s *stream) close() {
	s.cancel()
	<-s.ended
}

// trigger calls Options.Trigger for each of sources until ctx ends, and returns a
// function that stops it and returns the last trigger error.
func (k *kit) trigger(ctx context.Context, sources ...*gateways.EventSource) func() error {
	if k.opts.Trigger == nil || len(sources) == 0 {
		return func() error { return nil }
	}
	ctx, cancel := context.WithCancel(ctx)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		last error
	)
	for _, es := range sources {
		wg.Go(func() {
			for {
				err := k.opts.Trigger(ctx, es)
				if ctx.Err() != nil {
					return
				}
				mu.Lock()
				if err != nil {
					last = fmt.Errorf("trigger %s: %w", es.GetName(), err)
				}
				mu.Unlock()
				select {
				case <-ctx.Done():
					return
				case <-time.After(k.opts.TriggerEvery):
				}
			}
		})
	}
	return func() error {
		cancel()
		wg.Wait()
		return last
	}
}

// errNoEvent is the error of a wait for an event that timed out.
var errNoEvent = errors.New("no event")

// next waits up to the timeout for an event of s, triggering its source meanwhile.
func (k *kit) next(ctx context.Context, s *stream) (*gateways.Event, error) {
	return k.nextWithin(ctx, s, k.opts.Timeout)
}

// nextWithin waits up to wait for an event of s, triggering its source meanwhile.
func (k *kit) nextWithin(ctx context.Context, s *stream, wait time.Duration) (*gateways.Event, error) {
	stop := k.trigger(ctx, s.es)
	timer := time.NewTimer(wait)
	defer timer.Stop()
	var err error
	select {
	case ev := <-s.events:
		stop()
		return ev, nil
	case <-s.ended:
		err = ended(s.err)
	case <-timer.C:
		err = fmt.Errorf("%w within %s", errNoEvent, wait)
	case <-ctx.Done():
		err = errors.New("interrupted")
	}
	if terr := stop(); terr != nil {
		err = fmt.Errorf("%w (last %v)", err, terr)
	}
	return nil, err
}

// ended describes the end of a stream.
func ended(err error) error {
	if errors.Is(err, io.EOF) {
		return errors.New("the server ended the stream (OK status)")
	}
	return fmt.Errorf("the stream failed: %s", describe(err))
}

func (k *kit) startValid(ctx context.Context) (Status, string) {
	es := source(k.name(""), k.opts.Valid)
	s := k.open(ctx, k.client, es, true)
	defer s.close()
	ev, err := k.next(ctx, s)
	if err != nil {
		return Fail, "StartEventSource(--valid): " + err.Error()
	}
	if ev.GetName() != es.GetName() {
		return Fail, fmt.Sprintf("event name %q, want the source's %q", ev.GetName(), es.GetName())
	}
	return Pass, fmt.Sprintf("StartEventSource(--valid) streams events named %q", es.GetName())
}

// startInvalid checks that the invalid source's call ends with InvalidArgument, on
// StartEventSource and, where the server offers it, on StreamEventSource.
func (k *kit) startInvalid(ctx context.Context) (Status, string) {
	return k.onBoth(ctx, k.refusesInvalid)
}

func (k *kit) refusesInvalid(ctx context.Context, call string, open opener) (Status, string) {
	s := open(ctx, k.client, source(k.name(""), k.opts.Invalid))
	defer s.close()
	timer := time.NewTimer(k.opts.Timeout)
	defer timer.Stop()
	select {
	case ev := <-s.events:
		return Fail, fmt.Sprintf("%s(--invalid) streamed an event (name %q) instead of an error", call, ev.GetName())
	case <-s.ended:
	case <-timer.C:
		return Fail, fmt.Sprintf("%s(--invalid) left the stream open and empty for %s: the client cannot tell the source failed", call, k.opts.Timeout)
	case <-ctx.Done():
		return Fail, "interrupted"
	}
	// The gateway-client treats an InvalidArgument end alike on both calls (the source is
	// marked invalid with the message, not restarted), so both are judged alike.
	switch code := status.Code(s.err); {
	case call == streamCall && code == codes.Unimplemented:
		return skipped, ""
	case errors.Is(s.err, io.EOF):
		return Fail, call + "(--invalid) ended the stream with OK status instead of an error"
	case code != codes.InvalidArgument:
		return Warn, fmt.Sprintf("%s(--invalid) ended with %s, InvalidArgument expected", call, describe(s.err))
	case strings.TrimSpace(status.Convert(s.err).Message()) == "":
		return Warn, call + "(--invalid) ended with InvalidArgument without a message"
	}
	return Pass, call + "(--invalid) ends with " + describe(s.err)
}

// The calls a check runs over.
const (
	startCall  = "StartEventSource"
	streamCall = "StreamEventSource"
)

// skipped is the status of a check run over StreamEventSource on a server that answers it
// UNIMPLEMENTED: acked-delivery reports that once, the other checks say nothing of it.
const skipped Status = -1

// onBoth runs check over StartEventSource and then over StreamEventSource, which the
// gateway-client calls first, and returns the worse status with both reasons.
func (k *kit) onBoth(ctx context.Context, check func(context.Context, string, opener) (Status, string)) (Status, string) {
	st, why := check(ctx, startCall, k.openStart)
	if ctx.Err() != nil {
		return st, why
	}
	sst, swhy := check(ctx, streamCall, k.openStream)
	switch {
	case sst == skipped:
		return st, why
	case sst > st:
		return sst, swhy + "; " + why
	case st > sst:
		return st, why + "; " + swhy
	}
	return st, why + "; " + swhy
}

// unimplemented reports whether s is a StreamEventSource call the server does not offer.
func unimplemented(call string, s *stream) bool {
	return call == streamCall && endedWith(s, codes.Unimplemented)
}

// endedWith reports whether s has ended with code.
func endedWith(s *stream, code codes.Code) bool {
	select {
	case <-s.ended:
		return status.Code(s.err) == code
	default:
		return false
	}
}

// firstEvent opens es and waits for its first event, which it returns with the stream. The
// previous check's source of the same config (one webhook endpoint) may still be stopping
// on the server, as its cancellation travels on its own: while the server refuses es with
// AlreadyExists, it is opened again, as the gateway-client restarts a failed source, until
// the timeout.
func (k *kit) firstEvent(ctx context.Context, open opener, es *gateways.EventSource) (*stream, *gateways.Event, error) {
	deadline := time.Now().Add(k.opts.Timeout)
	for {
		s := open(ctx, k.client, es)
		ev, err := k.next(ctx, s)
		if err == nil || !endedWith(s, codes.AlreadyExists) || time.Now().After(deadline) {
			return s, ev, err
		}
		s.close()
		select {
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
			return s, nil, err
		}
	}
}

// cancel checks what the gateway-client does on a configuration change or a restart: it
// cancels a source's stream and starts the same source (same name and id) again at once.
// A server that keeps the cancelled source running (a held endpoint, client ID or lock)
// gives the new one no events.
func (k *kit) cancel(ctx context.Context) (Status, string) {
	return k.onBoth(ctx, k.restarts)
}

func (k *kit) restarts(ctx context.Context, call string, open opener) (Status, string) {
	es := source(k.name("restart"), k.opts.Valid)
	first, _, err := k.firstEvent(ctx, open, es)
	if err != nil {
		first.close()
		if unimplemented(call, first) {
			return skipped, ""
		}
		return Fail, call + ", first stream: " + err.Error()
	}
	began := time.Now()
	first.close()
	if _, err := k.validate(ctx, k.client, es); err != nil {
		return Fail, "ValidateEventSource after cancelling a stream: " + err.Error()
	}
	again := open(ctx, k.client, es)
	defer again.close()
	if _, err := k.next(ctx, again); err != nil {
		return Fail, call + ": the source started again right after its call was cancelled: " + err.Error() +
			"; is the server still running the cancelled one?"
	}
	return Pass, fmt.Sprintf("%s: a cancelled source started again and streamed within %s", call, time.Since(began).Round(time.Millisecond))
}

// twoSources runs two sources on one connection and reads events of both: neither
// carries the other's name, and cancelling one leaves the other streaming.
func (k *kit) twoSources(ctx context.Context) (Status, string) {
	return k.onBoth(ctx, k.twoSourcesOn)
}

func (k *kit) twoSourcesOn(ctx context.Context, call string, open opener) (Status, string) {
	const each = 3
	a, b := source(k.name("a"), k.opts.Valid), source(k.name("b"), k.opts.Valid2)
	sa, sb := open(ctx, k.client, a), open(ctx, k.client, b)
	defer func() { sa.close() }()
	defer func() { sb.close() }()
	// The previous check's source of the same config (one webhook endpoint) may still be
	// stopping on the server: its cancellation travels on its own. A source refused with
	// AlreadyExists before its first event is started again, as the gateway-client
	// restarts a failed source, until the deadline.
	reopen := func(s **stream, es *gateways.EventSource, n int) bool {
		if n > 0 || status.Code((*s).err) != codes.AlreadyExists {
			return false
		}
		select {
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
			return false
		}
		*s = open(ctx, k.client, es)
		return true
	}
	crossed := func(s *stream, other *gateways.EventSource, ev *gateways.Event) error {
		if ev.GetName() == other.GetName() {
			return fmt.Errorf("an event of %q came on the stream of %q", other.GetName(), s.es.GetName())
		}
		return nil
	}
	stop := k.trigger(ctx, a, b)
	deadline := time.NewTimer(k.opts.Timeout)
	defer deadline.Stop()
	var na, nb int
	for na < each || nb < each {
		var err error
		select {
		case ev := <-sa.events:
			na++
			err = crossed(sa, b, ev)
		case ev := <-sb.events:
			nb++
			err = crossed(sb, a, ev)
		case <-sa.ended:
			if unimplemented(call, sa) {
				stop()
				return skipped, ""
			}
			if reopen(&sa, a, na) {
				continue
			}
			err = fmt.Errorf("%s: %w", a.GetName(), ended(sa.err))
		case <-sb.ended:
			if unimplemented(call, sb) {
				stop()
				return skipped, ""
			}
			if reopen(&sb, b, nb) {
				continue
			}
			err = fmt.Errorf("%s: %w", b.GetName(), ended(sb.err))
		case <-deadline.C:
			err = fmt.Errorf("within %s, %d events of %s and %d of %s, want %d each", k.opts.Timeout, na, a.GetName(), nb, b.GetName(), each)
		case <-ctx.Done():
			err = errors.New("interrupted")
		}
		if err != nil {
			if terr := stop(); terr != nil {
				err = fmt.Errorf("%w (last %v)", err, terr)
			}
			return Fail, call + ": " + err.Error()
		}
	}
	stop()
	sa.close()
	for range each {
		ev, err := k.next(ctx, sb)
		if err != nil {
			return Fail, fmt.Sprintf("%s: after cancelling %s, %s: %v", call, a.GetName(), b.GetName(), err)
		}
		if err := crossed(sb, a, ev); err != nil {
			return Fail, call + ": " + err.Error()
		}
	}
	return Pass, fmt.Sprintf("%s: two sources streamed %d events each under their own names; cancelling one left the other streaming", call, each)
}

// slowReader starts a source and never reads its stream, as a stuck client would, while
// the source is triggered; then, on a connection of its own, the server must still
// validate and stream another source, and again once the stuck stream is cancelled.
func (k *kit) slowReader(ctx context.Context) (Status, string) {
	stalled := source(k.name("stalled"), k.opts.Valid)
	s := k.open(ctx, k.client, stalled, false)
	defer s.close()
	stop := k.trigger(ctx, stalled)
	select {
	case <-time.After(k.opts.Stall):
	case <-ctx.Done():
		stop()
		return Fail, "interrupted"
	}

	client, done, err := k.fresh(ctx)
	if err != nil {
		stop()
		return Fail, fmt.Sprintf("after a client stopped reading for %s, no new connection: %v", k.opts.Stall, err)
	}
	defer done()
	if _, err := k.validate(ctx, client, stalled); err != nil {
		stop()
		return Fail, fmt.Sprintf("after a client stopped reading for %s, ValidateEventSource: %v", k.opts.Stall, err)
	}
	other := k.open(ctx, client, source(k.name("fresh"), k.opts.Valid2), true)
	_, err = k.next(ctx, other)
	other.close()
	stop()
	if err != nil {
		return Fail, fmt.Sprintf("while a client did not read its stream, another source: %v", err)
	}
	s.close()
	if _, err := k.validate(ctx, client, stalled); err != nil {
		return Fail, "after the unread stream was cancelled, ValidateEventSource: " + err.Error()
	}
	return Pass, fmt.Sprintf("a stream left unread for %s did not stop the server from serving others", k.opts.Stall)
}

// fresh returns a client on a connection of its own, when Options.Dial allows.
func (k *kit) fresh(ctx context.Context) (gateways.EventingClient, func(), error) {
	if k.opts.Dial == nil {
		return k.client, func() {}, nil
	}
	ctx, cancel := context.WithTimeout(ctx, k.opts.Timeout)
	defer cancel()
	conn, err := k.opts.Dial(ctx)
	if err != nil {
		return nil, nil, err
	}
	return gateways.NewEventingClient(conn), func() { conn.Close() }, nil
}

func (k *kit) health(ctx context.Context) (Status, string) {
	ctx, cancel := context.WithTimeout(ctx, k.opts.Timeout)
	defer cancel()
	resp, err := healthpb.NewHealthClient(k.opts.Conn).Check(ctx, &healthpb.HealthCheckRequest{})
	switch {
	case status.Code(err) == codes.Unimplemented:
		return Warn, "no grpc.health.v1 service: Kubernetes probes and gwcat health cannot ask the server how it is"
	case ctx.Err() != nil:
		return Fail, fmt.Sprintf("grpc.health.v1 Check: no answer within %s", k.opts.Timeout)
	case err != nil:
		return Fail, "grpc.health.v1 Check: " + describe(err)
	case resp.GetStatus() != healthpb.HealthCheckResponse_SERVING:
		return Fail, "grpc.health.v1 Check answers " + resp.GetStatus().String()
	}
	return Pass, "grpc.health.v1 answers SERVING"
}
