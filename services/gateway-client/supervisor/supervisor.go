package supervisor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
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
	// ValidateTimeout bounds one ValidateEventSource call, so that a server that accepts
	// connections but never answers is skipped rather than waited on (10 s when zero).
	ValidateTimeout time.Duration
	Log             *slog.Logger
	// OnStatus, when set, is called with every status change (from the sources' goroutines).
	OnStatus func(Status)
	// AckHandler, when set, replaces the Handler: sources run on StreamEventSource, each
	// event acknowledged with the outcome its handler reports, and on StartEventSource only
	// on servers that do not implement it.
	AckHandler AckHandler
	// AckWindow is the most unacknowledged events a StreamEventSource call may hold
	// (DefaultAckWindow when 0).
	AckWindow uint32
	// AckLinger is how long an acknowledgement may wait for others to share its message
	// while more events of its call are in flight (DefaultAckLinger when 0; NoAckLinger:
	// only the acks already waiting share it).
	AckLinger time.Duration
}

// Server is one gateway server that sources can be placed on.
type Server struct {
	// Name says which server it is in logs and status messages, e.g. "calendar=127.0.0.1:9330".
	Name string
	// Type is the gateway type of the server's events, when it is not the Gateway's own.
	Type string
	Conn grpc.ClientConnInterface
}

type gwServer struct {
	Server
	client gateways.EventingClient
	// legacy is set once the server answered StreamEventSource with UNIMPLEMENTED, so that
	// the fallback to StartEventSource costs one call per server, not one per start.
	legacy atomic.Bool
}

// Supervisor runs event sources on one or more gateway servers.
type Supervisor struct {
	servers []gwServer
	handle  Handler
	opts    Options

	mu      sync.Mutex
	running map[string]context.CancelFunc // by source ID
	status  map[string]Status             // by source ID
	closed  bool
	wg      sync.WaitGroup
}

// New supervises sources on the one gateway server behind conn.
func New(conn grpc.ClientConnInterface, handle Handler, opts Options) *Supervisor {
	name := "gateway server"
	if cc, ok := conn.(interface{ Target() string }); ok {
		name = cc.Target()
	}
	return NewServers([]Server{{Name: name, Conn: conn}}, handle, opts)
}

// NewServers supervises sources on several gateway servers: each source runs on the first
// server, in the order given, whose ValidateEventSource accepts it.
func NewServers(servers []Server, handle Handler, opts Options) *Supervisor {
	if opts.Backoff == (dispatch.Backoff{}) {
		opts.Backoff = dispatch.DefaultBackoff
	}
	if opts.ValidateTimeout <= 0 {
		opts.ValidateTimeout = 10 * time.Second
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if opts.AckWindow == 0 {
		opts.AckWindow = DefaultAckWindow
	}
	if opts.AckLinger == 0 {
		opts.AckLinger = DefaultAckLinger
	}
	if opts.AckHandler != nil {
		handle = nil
	}
	s := &Supervisor{handle: handle, opts: opts, running: map[string]context.CancelFunc{}, status: map[string]Status{}}
	for _, srv := range servers {
		s.servers = append(s.servers, gwServer{Server: srv, client: gateways.NewEventingClient(srv.Conn)})
	}
	return s
}

type serverKey struct{}

// ServerFrom tells a Handler which server the event came from.
func ServerFrom(ctx context.Context) (Server, bool) {
	srv, ok := ctx.Value(serverKey{}).(Server)
	return srv, ok
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
	if s.closed {
		want = nil // a late Apply must not start sources that nothing would stop
	}
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
		now := time.Now()
		s.status[id] = Status{ID: id, Name: src.Name, Phase: PhaseRunning, Message: "starting", ConfiguredAt: now, UpdatedAt: now}
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

// Stop cancels every source and waits for their goroutines; later Applies start nothing.
func (s *Supervisor) Stop() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.Apply(nil)
	s.wg.Wait()
}

// update changes a source's status, unless it was stopped meanwhile, and reports the change.
func (s *Supervisor) update(id string, change func(*Status)) {
	s.mu.Lock()
	st, ok := s.status[id]
	if !ok {
		s.mu.Unlock()
		return
	}
	change(&st)
	st.UpdatedAt = time.Now()
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
			s.update(id, func(st *Status) {
				st.Phase, st.Message, st.Invalid, st.Server = PhaseError, "invalid: "+invalid.reason, true, ""
			})
			return
		case errors.Is(err, io.EOF):
			log.Info("event source completed")
			s.update(id, func(st *Status) {
				st.Phase, st.Message, st.Server = PhaseCompleted, "the source has no more events", ""
			})
			return
		}
		if delivered {
			attempt = 0 // it worked for a while: start the backoff over
		}
		wait := s.opts.Backoff.Delay(attempt)
		log.Warn("event source stream broke: restarting", "error", err, "retryIn", wait, "attempt", attempt+1)
		s.update(id, func(st *Status) {
			st.Phase, st.Message, st.Server = PhaseError, fmt.Sprintf("%v (restarting in %s)", err, wait.Round(time.Millisecond)), ""
		})
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

// runOnce places src on a server and reads its stream until it ends. It reports whether
// any event came through.
func (s *Supervisor) runOnce(ctx context.Context, src Source) (delivered bool, err error) {
	es := src.proto()
	srv, err := s.place(ctx, es)
	if err != nil {
		return false, err
	}
	ctx, cancel := context.WithCancel(context.WithValue(ctx, serverKey{}, srv.Server))
	defer cancel()
	if s.opts.AckHandler != nil && !srv.legacy.Load() {
		delivered, err := s.runAcked(ctx, src, srv)
		if !errors.Is(err, errUnimplemented) {
			return delivered, err
		}
		srv.legacy.Store(true)
		s.opts.Log.Info("gateway server does not implement StreamEventSource: its sources run on StartEventSource, unacknowledged", "server", srv.Name)
	}
	stream, err := srv.client.StartEventSource(ctx, es)
	if err != nil {
		return false, fmt.Errorf("start on %s: %w", srv.Name, err)
	}
	s.update(es.GetId(), func(st *Status) {
		st.Phase, st.Message, st.Server, st.Invalid = PhaseRunning, "running on "+srv.Name, srv.Name, false
		st.StartedAt = time.Now()
	})
	for {
		ev, err := stream.Recv()
		if err != nil {
			if err == io.EOF {
				return delivered, io.EOF
			}
			if status.Code(err) == codes.InvalidArgument {
				return delivered, &invalidError{reason: status.Convert(err).Message()}
			}
			return delivered, fmt.Errorf("stream from %s: %w", srv.Name, err)
		}
		delivered = true
		if err := s.handleUnacked(ctx, src.Name, ev); err != nil {
			return delivered, fmt.Errorf("handle event: %w", err)
		}
	}
}

// place asks the servers in order to validate es and returns the first that accepts it. When
// every server answered and refused, es is invalid; when some could not be asked, it may
// yet be accepted by one of them, so the error is an ordinary one and the source is retried.
func (s *Supervisor) place(ctx context.Context, es *gateways.EventSource) (*gwServer, error) {
	var refused, unreachable []string
	for i := range s.servers {
		srv := &s.servers[i]
		vctx, cancel := context.WithTimeout(ctx, s.opts.ValidateTimeout)
		valid, err := srv.client.ValidateEventSource(vctx, es)
		cancel()
		switch {
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case err != nil:
			unreachable = append(unreachable, fmt.Sprintf("%s: unreachable: %s", srv.Name, status.Convert(err).Message()))
		case valid.GetIsValid():
			return srv, nil
		case len(s.servers) == 1:
			refused = append(refused, valid.GetReason())
		default:
			refused = append(refused, fmt.Sprintf("%s: %s", srv.Name, valid.GetReason()))
		}
	}
	if len(unreachable) == 0 {
		if len(s.servers) == 1 {
			return nil, &invalidError{reason: refused[0]}
		}
		return nil, &invalidError{reason: "refused by every gateway server: " + strings.Join(refused, "; ")}
	}
	if len(s.servers) == 1 {
		return nil, fmt.Errorf("validate: %s", unreachable[0])
	}
	return nil, fmt.Errorf("no gateway server took it: %s", strings.Join(append(unreachable, refused...), "; "))
}
