package sensorsink

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
)

// Mode is how a Sink answers deliveries. Tests and demos flip it at run time to play a
// healthy, a failing or a hanging sensor.
type Mode string

const (
	// ModeOK accepts every valid event.
	ModeOK Mode = "ok"
	// ModeFail refuses every delivery so that the sender retries: HTTP answers 503. Core
	// NATS has no acknowledgement to withhold, so a NATS event is dropped, as it would be
	// by a sensor that is down.
	ModeFail Mode = "fail"
	// ModeStall holds each delivery until the sender gives up, the mode changes (the
	// delivery is then decided by the new mode) or the sink closes (it is then refused).
	ModeStall Mode = "stall"
)

// ParseMode reads a mode name; case and surrounding space are ignored.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(strings.ToLower(strings.TrimSpace(s))); m {
	case ModeOK, ModeFail, ModeStall:
		return m, nil
	}
	return "", fmt.Errorf("%q is not ok, fail or stall", s)
}

// DefaultKeep is how many accepted events a Sink keeps for Received, the oldest
// forgotten first, so that a long-running demo sensor does not grow without bound.
const DefaultKeep = 10000

// DefaultShutdownTimeout bounds Run's graceful stop.
const DefaultShutdownTimeout = 5 * time.Second

// Stats counts deliveries by outcome over the Sink's life (Reset does not clear them).
type Stats struct {
	// Accepted counts recorded events; each event of a batch counts.
	Accepted int `json:"accepted"`
	// Rejected counts deliveries refused: by mode fail, by fail-first, or because the
	// sink closed while they stalled.
	Rejected int `json:"rejected"`
	// Abandoned counts stalled deliveries whose sender gave up waiting.
	Abandoned int `json:"abandoned"`
	// Malformed counts deliveries that were not valid CloudEvents.
	Malformed int `json:"malformed"`
	// Held is how many deliveries a stall holds right now, so that a test can wait until
	// its request is held before it acts.
	Held int `json:"held"`
}

// Sink records the CloudEvents it accepts. It is an http.Handler (events on POST to any
// path, plus /healthz and /control/...) and a NATS message handler; Start serves both.
// A Sink serves once: after Close it refuses every delivery.
type Sink struct {
	log             *slog.Logger
	out             *printer
	keep            int
	shutdownTimeout time.Duration
	mux             *http.ServeMux

	mu          sync.Mutex
	mode        Mode
	failFirst   int
	modeChanged chan struct{} // closed and replaced on each mode change: wakes stalls
	events      []event.Event
	recorded    chan struct{} // closed and replaced on each record: wakes Wait
	stats       Stats

	// printMu spans recording and printing so that lines come out in recording order
	// without a slow output blocking the control endpoints, which take only mu.
	printMu sync.Mutex

	closing   chan struct{}
	closeOnce sync.Once
}

// Option adjusts a Sink.
type Option func(*Sink)

// WithLogger sets the logger (slog.Default otherwise).
func WithLogger(l *slog.Logger) Option { return func(s *Sink) { s.log = l } }

// WithMode sets the starting mode (ModeOK otherwise).
func WithMode(m Mode) Option { return func(s *Sink) { s.mode = m } }

// WithFailFirst makes the first n deliveries fail whatever the mode, so that a sender's
// retry can be tested without flipping modes.
func WithFailFirst(n int) Option { return func(s *Sink) { s.failFirst = n } }

// WithOutput prints each accepted event to w in format f (nothing is printed otherwise).
func WithOutput(w io.Writer, f Format) Option {
	return func(s *Sink) { s.out = &printer{w: w, format: f} }
}

// WithKeep sets how many events Received keeps (DefaultKeep otherwise, or if n < 1:
// a sink that keeps nothing could never be waited on).
func WithKeep(n int) Option {
	return func(s *Sink) {
		if n > 0 {
			s.keep = n
		}
	}
}

// WithShutdownTimeout bounds Run's graceful stop (DefaultShutdownTimeout otherwise).
func WithShutdownTimeout(d time.Duration) Option { return func(s *Sink) { s.shutdownTimeout = d } }

// New returns a Sink in ModeOK that prints nothing, unless opts say otherwise.
func New(opts ...Option) *Sink {
	s := &Sink{
		log:             slog.Default(),
		keep:            DefaultKeep,
		shutdownTimeout: DefaultShutdownTimeout,
		mode:            ModeOK,
		modeChanged:     make(chan struct{}),
		recorded:        make(chan struct{}),
		closing:         make(chan struct{}),
	}
	for _, o := range opts {
		o(s)
	}
	s.mux = s.routes()
	return s
}

// ServeHTTP serves events, health and control; see routes.
func (s *Sink) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Mode returns the current mode.
func (s *Sink) Mode() Mode {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mode
}

// SetMode switches the mode; stalled deliveries are then decided by the new one.
func (s *Sink) SetMode(m Mode) {
	s.mu.Lock()
	old := s.mode
	s.mode = m
	close(s.modeChanged)
	s.modeChanged = make(chan struct{})
	s.mu.Unlock()
	s.log.Info("sensor mode changed", "from", old, "to", m)
}

// FailFirst returns how many of the next deliveries will still fail whatever the mode.
func (s *Sink) FailFirst() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failFirst
}

// SetFailFirst makes the next n deliveries fail whatever the mode.
func (s *Sink) SetFailFirst(n int) {
	s.mu.Lock()
	s.failFirst = n
	s.mu.Unlock()
	s.log.Info("sensor fail-first set", "n", n)
}

// Received returns copies of the accepted events still kept, oldest first.
func (s *Sink) Received() []event.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	kept := s.kept()
	out := make([]event.Event, len(kept))
	for i, e := range kept {
		out[i] = e.Clone()
	}
	return out
}

// Wait blocks until Received holds at least n events, and returns them; or returns
// ctx's error with what it holds by then.
func (s *Sink) Wait(ctx context.Context, n int) ([]event.Event, error) {
	for {
		s.mu.Lock()
		have, recorded := len(s.kept()), s.recorded
		s.mu.Unlock()
		if have >= n {
			return s.Received(), nil
		}
		select {
		case <-recorded:
		case <-ctx.Done():
			return s.Received(), fmt.Errorf("wait for %d events, have %d: %w", n, have, ctx.Err())
		}
	}
}

// kept is the last keep events recorded (s.mu held).
func (s *Sink) kept() []event.Event {
	return s.events[max(len(s.events)-s.keep, 0):]
}

// Stats returns the delivery counts so far.
func (s *Sink) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// Reset forgets the received events (not the stats), so that one sink can serve several
// test cases.
func (s *Sink) Reset() {
	s.mu.Lock()
	s.events = nil
	s.mu.Unlock()
}

// Close refuses stalled and later deliveries, so that a graceful stop is not held up by
// a stall. It does not close listeners: Server.Stop does that, after calling Close.
func (s *Sink) Close() {
	s.closeOnce.Do(func() { close(s.closing) })
}

type verdict int

const (
	accept  verdict = iota
	reject          // answer "try again" (HTTP 503) or drop (NATS)
	abandon         // the sender gave up while stalled: nobody reads an answer
)

// admit decides one delivery, waiting while the mode is stall. ctx is the sender's side
// of the delivery: its end means the sender gave up. reason says why a delivery was
// refused.
func (s *Sink) admit(ctx context.Context) (v verdict, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	defer func() {
		switch v {
		case reject:
			s.stats.Rejected++
		case abandon:
			s.stats.Abandoned++
		}
	}()
	if s.failFirst > 0 {
		s.failFirst--
		return reject, "fail-first"
	}
	for {
		select {
		case <-s.closing:
			return reject, "sensor stopping"
		default:
		}
		switch s.mode {
		case ModeOK:
			return accept, ""
		case ModeFail:
			return reject, "mode fail"
		case ModeStall: // wait below
		default:
			return reject, fmt.Sprintf("unknown mode %q", s.mode)
		}
		changed := s.modeChanged
		s.stats.Held++
		s.mu.Unlock()
		gaveUp := false
		select {
		case <-changed:
		case <-s.closing:
		case <-ctx.Done():
			gaveUp = true
		}
		s.mu.Lock()
		s.stats.Held--
		if gaveUp {
			return abandon, "sender gave up"
		}
	}
}

// record keeps and prints accepted events; transport ("http", "nats") goes to the log.
func (s *Sink) record(events []event.Event, transport string) {
	s.printMu.Lock()
	defer s.printMu.Unlock()

	for i := range events {
		// So that /control/events can always encode what was received.
		jsonReady(&events[i])
	}
	s.mu.Lock()
	s.events = append(s.events, events...)
	// Trimmed only once twice keep have piled up: trimming at every event would copy all
	// kept events per event, which made a busy sensor the slowest part of any path.
	if len(s.events) >= 2*s.keep {
		s.events = append(s.events[:0:0], s.kept()...)
	}
	s.stats.Accepted += len(events)
	close(s.recorded)
	s.recorded = make(chan struct{})
	s.mu.Unlock()

	for _, e := range events {
		s.log.Debug("event accepted", "transport", transport, "eventID", e.ID(), "source", e.Source(), "type", e.Type())
		if s.out == nil {
			continue
		}
		if err := s.out.print(e); err != nil {
			s.log.Warn("print event", "eventID", e.ID(), "error", err)
		}
	}
}

// malformed counts and logs a delivery that was not a valid CloudEvent.
func (s *Sink) malformed(transport string, err error) {
	s.mu.Lock()
	s.stats.Malformed++
	s.mu.Unlock()
	s.log.Warn("malformed delivery", "transport", transport, "error", err)
}
