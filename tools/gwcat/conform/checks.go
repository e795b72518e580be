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

// next waits up to the timeout for an event of s, triggering its source meanwhile.
func (k *kit) next(ctx context.Context, s *stream) (*gateways.Event, error) {
	stop := k.trigger(ctx, s.es)
	timer := time.NewTimer(k.opts.Timeout)
	defer timer.Stop()
	var err error
	select {
	case ev := <-s.events:
		stop()
		return ev, nil
	case <-s.ended:
		err = ended(s.err)
	case <-timer.C:
		err = fmt.Errorf("no event within %s", k.opts.Timeout)
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

func (k *kit) startInvalid(ctx context.Context) (Status, string) {
	s := k.open(ctx, k.client, source(k.name(""), k.opts.Invalid), true)
	defer s.close()
	timer := time.NewTimer(k.opts.Timeout)
	defer timer.Stop()
	select {
	case ev := <-s.events:
		return Fail, fmt.Sprintf("StartEventSource(--invalid) streamed an event (name %q) instead of an error", ev.GetName())
	case <-s.ended:
	case <-timer.C:
		return Fail, fmt.Sprintf("StartEventSource(--invalid) left the stream open and empty for %s: the client cannot tell the source failed", k.opts.Timeout)
	case <-ctx.Done():
		return Fail, "interrupted"
	}
	switch code := status.Code(s.err); {
	case errors.Is(s.err, io.EOF):
		return Fail, "StartEventSource(--invalid) ended the stream with OK status instead of an error"
	case code != codes.InvalidArgument:
		return Warn, fmt.Sprintf("StartEventSource(--invalid) ended with %s, InvalidArgument expected", describe(s.err))
	case strings.TrimSpace(status.Convert(s.err).Message()) == "":
		return Warn, "StartEventSource(--invalid) ended with InvalidArgument without a message"
	}
	return Pass, "StartEventSource(--invalid) ends with " + describe(s.err)
}

// cancel checks what the gateway-client does on a configuration change or a restart: it
// cancels a source's stream and starts the same source (same name and id) again at once.
// A server that keeps the cancelled source running (a held endpoint, client ID or lock)
// gives the new one no events.
func (k *kit) cancel(ctx context.Context) (Status, string) {
	es := source(k.name("restart"), k.opts.Valid)
	first := k.open(ctx, k.client, es, true)
	if _, err := k.next(ctx, first); err != nil {
		first.close()
		return Fail, "first stream: " + err.Error()
	}
	began := time.Now()
	first.close()
	if _, err := k.validate(ctx, k.client, es); err != nil {
		return Fail, "ValidateEventSource after cancelling a stream: " + err.Error()
	}
	again := k.open(ctx, k.client, es, true)
	defer again.close()
	if _, err := k.next(ctx, again); err != nil {
		return Fail, "the source started again right after its stream was cancelled: " + err.Error() +
			"; is the server still running the cancelled one?"
	}
	return Pass, fmt.Sprintf("a cancelled source started again and streamed within %s", time.Since(began).Round(time.Millisecond))
}

// twoSources runs two sources on one connection and reads events of both: neither
// carries the other's name, and cancelling one leaves the other streaming.
func (k *kit) twoSources(ctx context.Context) (Status, string) {
	const each = 3
	a, b := source(k.name("a"), k.opts.Valid), source(k.name("b"), k.opts.Valid2)
	sa, sb := k.open(ctx, k.client, a, true), k.open(ctx, k.client, b, true)
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
		*s = k.open(ctx, k.client, es, true)
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
			if reopen(&sa, a, na) {
				continue
			}
			err = fmt.Errorf("%s: %w", a.GetName(), ended(sa.err))
		case <-sb.ended:
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
			terr := stop()
			if terr != nil {
				return Fail, fmt.Sprintf("%v (last %v)", err, terr)
			}
			return Fail, err.Error()
		}
	}
	stop()
	sa.close()
	for range each {
		ev, err := k.next(ctx, sb)
		if err != nil {
			return Fail, fmt.Sprintf("after cancelling %s, %s: %v", a.GetName(), b.GetName(), err)
		}
		if err := crossed(sb, a, ev); err != nil {
			return Fail, err.Error()
		}
	}
	return Pass, fmt.Sprintf("two sources streamed %d events each under their own names; cancelling one left the other streaming", each)
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
