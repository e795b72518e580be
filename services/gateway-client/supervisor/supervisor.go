package supervisor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/eventgate/eventgate/pkg/dispatch"
	"github.com/eventgate/eventgate/protos/gateways"
)

// Handler takes one event of the named source. It may block: the stream is not read meanwhile,
// which is how a slow sensor slows the gateway server down. An error stops the source's stream
// (it is restarted like a broken one).
type Handler func(ctx context.Context, source string, ev *gateways.Event) error

// Options tune a Supervisor.
type Options struct {
	// Backoff spaces restarts of a broken source (dispatch.DefaultBackoff when zero).
	Backoff dispatch.Backoff
	Log     *slog.Logger
	// OnStatus, when set, is called with every status change (from the sources' goroutines).
	OnStatus func(Status)
}

// Supervisor runs the event sources of one gateway server.
type Supervisor struct {
	client gateways.EventingClient
	handle Handler
	opts   Options

	mu      sync.Mutex
	running map[string]context.CancelFunc // by source ID
	status  map[string]Status             // by source ID
	wg      sync.WaitGroup
}

// New supervises sources on the gateway server behind conn.
func New(conn grpc.ClientConnInterface, handle Handler, opts Options) *Supervisor {
	if opts.Backoff == (dispatch.Backoff{}) {
		opts.Backoff = dispatch.DefaultBackoff
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	return &Supervisor{
		client: gateways.NewEventingClient(conn), handle: handle, opts: opts,
		running: map[string]context.CancelFunc{}, status: map[string]Status{},
	}
}

// Apply makes the running sources those given: sources no longer configured (or whose config
// changed) are cancelled, new ones started. Unchanged sources are left alone. It returns the
// names started and stopped.
func (s *Supervisor) Apply(sources []Source) (started, stopped []string) {
	want := map[string]Source{}
	for _, src := range sources {
		want[src.ID()] = src
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, cancel := range s.running {
		if _, ok := want[id]; !ok {
			cancel()
			delete(s.running, id)
			stopped = append(stopped, s.status[id].Name)
			delete(s.status, id)
		}
	}
	for id, src := range want {
		if _, ok := s.running[id]; ok {
			continue
		}
		ctx, cancel := context.WithCancel(context.Background())
		s.running[id] = cancel
		s.status[id] = Status{ID: id, Name: src.Name, Phase: PhaseRunning, Message: "starting", UpdatedAt: time.Now()}
		started = append(started, src.Name)
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.run(ctx, src)
		}()
	}
	sort.Strings(started)
	sort.Strings(stopped)
	return started, stopped
}

// Statuses lists every configured source's status, by name.
func (s *Supervisor) Statuses() []Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Status, 0, len(s.status))
	for _, st := range s.status {
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Stop cancels every source and waits for their goroutines.
func (s *Supervisor) Stop() {
	s.Apply(nil)
	s.wg.Wait()
}

func (s *Supervisor) setStatus(id string, phase Phase, message string, started bool) {
	s.mu.Lock()
	st, ok := s.status[id]
	if !ok { // stopped meanwhile
		s.mu.Unlock()
		return
	}
	st.Phase, st.Message, st.UpdatedAt = phase, message, time.Now()
	if started {
		st.StartedAt = st.UpdatedAt
	}
	s.status[id] = st
	s.mu.Unlock()
	if s.opts.OnStatus != nil {
		s.opts.OnStatus(st)
	}
}

// run keeps one source going until ctx ends, it is invalid, or it completes.
func (s *Supervisor) run(ctx context.Context, src Source) {
	id := src.ID()
	log := s.opts.Log.With("eventSource", src.Name, "eventSourceID", id)
	for attempt := 0; ; attempt++ {
		delivered, err := s.runOnce(ctx, src)
		if ctx.Err() != nil {
			return
		}
		var invalid *invalidError
		switch {
		case errors.As(err, &invalid):
			// Retried only when its config changes, which is a new source.
			log.Error("event source is invalid: not started", "reason", invalid.reason)
			s.setStatus(id, PhaseError, "invalid: "+invalid.reason, false)
			return
		case errors.Is(err, io.EOF):
			log.Info("event source completed")
			s.setStatus(id, PhaseCompleted, "the source has no more events", false)
			return
		}
		if delivered {
			attempt = 0 // it worked for a while: start the backoff over
		}
		wait := s.opts.Backoff.Delay(attempt)
		log.Warn("event source stream broke: restarting", "error", err, "retryIn", wait, "attempt", attempt+1)
		s.setStatus(id, PhaseError, fmt.Sprintf("%v (restarting in %s)", err, wait.Round(time.Millisecond)), false)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return
		}
	}
}

type invalidError struct{ reason string }

func (e *invalidError) Error() string { return "invalid event source: " + e.reason }

// runOnce validates and starts src and reads its stream until it ends. It reports whether
// any event came through.
func (s *Supervisor) runOnce(ctx context.Context, src Source) (delivered bool, err error) {
	es := src.proto()
	valid, err := s.client.ValidateEventSource(ctx, es)
	if err != nil {
		return false, fmt.Errorf("validate: %w", err)
	}
	if !valid.GetIsValid() {
		return false, &invalidError{reason: valid.GetReason()}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := s.client.StartEventSource(ctx, es)
	if err != nil {
		return false, fmt.Errorf("start: %w", err)
	}
	s.setStatus(es.GetId(), PhaseRunning, "", true)
	for {
		ev, err := stream.Recv()
		if err != nil {
			if err == io.EOF {
				return delivered, io.EOF
			}
			if status.Code(err) == codes.InvalidArgument {
				return delivered, &invalidError{reason: status.Convert(err).Message()}
			}
			return delivered, fmt.Errorf("stream: %w", err)
		}
		delivered = true
		if err := s.handle(ctx, src.Name, ev); err != nil {
			return delivered, fmt.Errorf("handle event: %w", err)
		}
	}
}
