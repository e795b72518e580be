package conform_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/eventgate/eventgate/pkg/config"
	"github.com/eventgate/eventgate/pkg/server"
	"github.com/eventgate/eventgate/pkg/testenv"
	"github.com/eventgate/eventgate/protos/gateways"
	"github.com/eventgate/eventgate/tools/gwcat/conform"
)

// flaw is the one way a fake gateway breaks the contract.
type flaw string

const (
	noFlaw            flaw = ""
	acceptsInvalid    flaw = "accepts invalid"
	refusesValid      flaw = "refuses valid"
	emptyReason       flaw = "empty reason"
	wrongNames        flaw = "wrong event names"
	invalidOpenStream flaw = "invalid config gives an open empty stream"
	ignoresCancel     flaw = "ignores cancellation"
	crossTalk         flaw = "cross-talk between sources"
	blocksSlowReader  flaw = "blocks when a client stops reading"
	crashesSlowReader flaw = "crashes when a client stops reading"
	noHealth          flaw = "no health"
	notServing        flaw = "health NOT_SERVING"
	ignoresWindow     flaw = "StreamEventSource ignores the window"

	// The fake serves StreamEventSource with acknowledged delivery for these (ackedFlaws).
	ackedGood       flaw = "acknowledged delivery"
	lowersWindow    flaw = "StreamEventSource lowers the window to 1"
	windowFirstOnly flaw = "StreamEventSource keeps the window only until the first ack"
	streamsInvalid  flaw = "StreamEventSource streams an invalid config"
	keepsCancelled  flaw = "StreamEventSource keeps running a cancelled source"
	// ignoresHalfClose streams on after the client half-closed; acceptsBadAck takes acks
	// with OUTCOME_UNSPECIFIED and for seqs unknown or already acknowledged.
	ignoresHalfClose flaw = "StreamEventSource ignores the client's half-close"
	acceptsBadAck    flaw = "StreamEventSource accepts OUTCOME_UNSPECIFIED and unknown seqs"
)

// ackedFlaws are the flaws of a fake that serves acknowledged delivery.
var ackedFlaws = map[flaw]bool{ackedGood: true, lowersWindow: true, windowFirstOnly: true, streamsInvalid: true, keepsCancelled: true,
	ignoresHalfClose: true, acceptsBadAck: true}

// fake is a gateway server written against gateways.EventingServer directly, with one
// flaw. Its sources are "ok" (valid, an event every 20ms) and "bad" (invalid).
type fake struct {
	gateways.UnimplementedEventingServer
	flaw  flaw
	done  chan struct{} // closed at the test's end: what ignores cancellation ends then
	crash func()

	mu      sync.Mutex
	last    string          // crossTalk: the name of the source started last
	running map[string]bool // ignoresCancel, keepsCancelled: sources by id that never stop
}

const (
	validData   = "ok"
	invalidData = "bad"
)

func (f *fake) ValidateEventSource(_ context.Context, es *gateways.EventSource) (*gateways.ValidEventSource, error) {
	if f.flaw == blocksSlowReader {
		// A server-wide lock, held by a send stuck on a client that does not read.
		f.mu.Lock()
		defer f.mu.Unlock()
	}
	invalid := es.GetData() == invalidData
	switch {
	case f.flaw == acceptsInvalid:
		return &gateways.ValidEventSource{IsValid: true}, nil
	case f.flaw == refusesValid && !invalid:
		return &gateways.ValidEventSource{IsValid: false, Reason: "fake: no"}, nil
	case invalid && f.flaw == emptyReason:
		return &gateways.ValidEventSource{IsValid: false}, nil
	case invalid:
		return &gateways.ValidEventSource{IsValid: false, Reason: "fake.data: must be ok"}, nil
	}
	return &gateways.ValidEventSource{IsValid: true}, nil
}

func (f *fake) StartEventSource(es *gateways.EventSource, stream gateways.Eventing_StartEventSourceServer) error {
	ctx := stream.Context()
	if es.GetData() == invalidData {
		if f.flaw == invalidOpenStream {
			<-ctx.Done()
			return nil
		}
		return status.Error(codes.InvalidArgument, "fake.data: must be ok")
	}
	if f.flaw == ignoresCancel {
		f.mu.Lock()
		if f.running[es.GetId()] {
			// Waits for the earlier start of this source, which never ends.
			f.mu.Unlock()
			<-ctx.Done()
			return status.Error(codes.Canceled, "cancelled")
		}
		f.running[es.GetId()] = true
		f.mu.Unlock()
	}
	f.mu.Lock()
	f.last = es.GetName()
	f.mu.Unlock()

	payload := []byte(`{"fake":true}`)
	pace := 20 * time.Millisecond
	if f.flaw == blocksSlowReader || f.flaw == crashesSlowReader {
		payload, pace = make([]byte, 256<<10), 0 // fill a stalled stream's window at once
	}
	for {
		name := es.GetName()
		switch f.flaw {
		case wrongNames:
			name = "fake"
		case crossTalk:
			f.mu.Lock()
			name = f.last
			f.mu.Unlock()
		}
		err := f.send(stream, &gateways.Event{Name: name, Payload: payload})
		if err != nil && f.flaw != ignoresCancel {
			return err
		}
		select {
		case <-ctx.Done():
			if f.flaw != ignoresCancel {
				return nil
			}
		case <-f.done:
			return nil
		case <-time.After(pace):
		}
	}
}

// StreamEventSource is UNIMPLEMENTED, as on a server without acknowledged delivery, except
// for ignoresWindow and ackedFlaws.
func (f *fake) StreamEventSource(stream gateways.Eventing_StreamEventSourceServer) error {
	switch {
	case f.flaw == ignoresWindow:
		return f.ignoreWindow(stream)
	case ackedFlaws[f.flaw]:
		return f.serveAcked(stream)
	}
	return f.UnimplementedEventingServer.StreamEventSource(stream)
}

// serveAcked is acknowledged delivery: an event every 20ms while fewer than the window are
// unacknowledged, the call ended (OK) by the client's half-close and (InvalidArgument) by an
// ack without an outcome or of a seq not unacknowledged; but for the fake's flaw.
func (f *fake) serveAcked(stream gateways.Eventing_StreamEventSourceServer) error {
	ctx := stream.Context()
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	es := first.GetStart().GetSource()
	if es.GetData() == invalidData && f.flaw != streamsInvalid {
		return status.Error(codes.InvalidArgument, "fake.data: must be ok")
	}
	if f.flaw == keepsCancelled && f.stillRunning(es) {
		<-ctx.Done() // the earlier, cancelled call of this source holds it
		return status.Error(codes.Canceled, "cancelled")
	}
	window := int(first.GetStart().GetWindow())
	if f.flaw == lowersWindow {
		window = 1
	}
	acks := make(chan *gateways.Ack)
	halfClosed := make(chan struct{})
	go func() {
		for {
			msg, err := stream.Recv()
			if errors.Is(err, io.EOF) && f.flaw != ignoresHalfClose {
				close(halfClosed)
				return
			}
			if err != nil {
				return
			}
			select {
			case acks <- msg.GetAck():
			case <-ctx.Done():
				return
			}
		}
	}()
	pending, everAcked := map[uint64]bool{}, false
	for seq := uint64(1); ; {
		if len(pending) < window || (f.flaw == windowFirstOnly && everAcked) {
			if err := stream.Send(&gateways.Event{Name: es.GetName(), Payload: []byte(`{"fake":true}`), Seq: seq}); err != nil {
				return err
			}
			pending[seq] = true
			seq++
		}
		select {
		case ack := <-acks:
			if ack.GetOutcome() == gateways.Ack_OUTCOME_UNSPECIFIED && f.flaw != acceptsBadAck {
				return status.Errorf(codes.InvalidArgument, "ack of seqs %v: no outcome", ack.GetSeqs())
			}
			for _, s := range ack.GetSeqs() {
				if !pending[s] && f.flaw != acceptsBadAck {
					return status.Errorf(codes.InvalidArgument, "ack for seq %d: unknown or already acknowledged", s)
				}
				delete(pending, s)
			}
			everAcked = true
		case <-halfClosed:
			return nil
		case <-ctx.Done():
			return nil
		case <-f.done:
			return nil
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// stillRunning reports whether es was started before (keepsCancelled never stops a source),
// and marks it started.
func (f *fake) stillRunning(es *gateways.EventSource) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	was := f.running[es.GetId()]
	f.running[es.GetId()] = true
	return was
}

// ignoreWindow numbers its events but sends on whatever the client acknowledged.
func (f *fake) ignoreWindow(stream gateways.Eventing_StreamEventSourceServer) error {
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	if first.GetStart().GetSource().GetData() == invalidData {
		return status.Error(codes.InvalidArgument, "fake.data: must be ok")
	}
	name := first.GetStart().GetSource().GetName()
	ended := make(chan error, 1) // nil: the client half-closed
	go func() {
		// Acks are read and ignored, but for the checks of other rules (half-close, bad-ack):
		// the fake has one flaw. Recv ends when the call does.
		for {
			msg, err := stream.Recv()
			switch {
			case errors.Is(err, io.EOF):
				ended <- nil
				return
			case err != nil:
				return
			case msg.GetAck().GetOutcome() == gateways.Ack_OUTCOME_UNSPECIFIED:
				ended <- status.Error(codes.InvalidArgument, "ack without an outcome")
				return
			}
		}
	}()
	for seq := uint64(1); ; seq++ {
		if err := stream.Send(&gateways.Event{Name: name, Payload: []byte(`{"fake":true}`), Seq: seq}); err != nil {
			return err
		}
		select {
		case err := <-ended:
			return err
		case <-stream.Context().Done():
			return nil
		case <-f.done:
			return nil
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (f *fake) send(stream gateways.Eventing_StartEventSourceServer, ev *gateways.Event) error {
	switch f.flaw {
	case blocksSlowReader:
		f.mu.Lock()
		defer f.mu.Unlock()
	case crashesSlowReader:
		// A send stuck for long brings the whole server down, as a watchdog or an
		// out-of-memory kill would.
		t := time.AfterFunc(300*time.Millisecond, f.crash)
		defer t.Stop()
	}
	return stream.Send(ev)
}

// startFake serves f on a loopback port until the test ends.
func startFake(t *testing.T, f *fake) string {
	t.Helper()
	f.done, f.running = make(chan struct{}), map[string]bool{}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	gateways.RegisterEventingServer(srv, f)
	if f.flaw != noHealth {
		hs := health.NewServer()
		if f.flaw == notServing {
			hs.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
		}
		healthpb.RegisterHealthServer(srv, hs)
	}
	var once sync.Once
	f.crash = func() { once.Do(func() { go srv.Stop() }) }
	served := make(chan struct{})
	go func() {
		defer close(served)
		srv.Serve(lis)
	}()
	t.Cleanup(func() {
		close(f.done)
		srv.Stop()
		<-served
	})
	return lis.Addr().String()
}

func dial(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// options are the kit's options for the server at addr, with short deadlines.
func options(t *testing.T, addr, valid, invalid string) conform.Options {
	return conform.Options{
		Conn: dial(t, addr),
		Dial: func(context.Context) (*grpc.ClientConn, error) {
			return grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		},
		Valid: valid, Invalid: invalid,
		Timeout: 2 * time.Second, Stall: 500 * time.Millisecond,
	}
}

// statuses maps each check to its status.
func statuses(results []conform.Result) map[string]conform.Status {
	m := map[string]conform.Status{}
	for _, r := range results {
		m[r.Check] = r.Status
	}
	return m
}

// expect checks that every check passed except those in want, which have the status given.
func expect(t *testing.T, results []conform.Result, want map[string]conform.Status) {
	t.Helper()
	if len(results) != len(conform.Checks) {
		t.Errorf("%d results, want one per check (%d)", len(results), len(conform.Checks))
	}
	got := statuses(results)
	for _, check := range conform.Checks {
		w, ok := want[check]
		if !ok {
			w = conform.Pass
		}
		if got[check] != w {
			t.Errorf("check %s = %s, want %s", check, got[check], w)
		}
	}
	if t.Failed() || testing.Verbose() {
		for _, r := range results {
			t.Log(r)
		}
	}
}

// Each broken server fails exactly the check for its flaw, and the fake without a flaw
// passes them all.
func TestBrokenServers(t *testing.T) {
	tests := []struct {
		flaw  flaw
		check string
		want  conform.Status
	}{
		{noFlaw, "", conform.Pass},
		{acceptsInvalid, conform.CheckValidateInvalid, conform.Fail},
		{refusesValid, conform.CheckValidateValid, conform.Fail},
		{emptyReason, conform.CheckValidateInvalid, conform.Fail},
		{wrongNames, conform.CheckStartValid, conform.Fail},
		{invalidOpenStream, conform.CheckStartInvalid, conform.Fail},
		{ignoresCancel, conform.CheckCancel, conform.Fail},
		{crossTalk, conform.CheckTwoSources, conform.Fail},
		{blocksSlowReader, conform.CheckSlowReader, conform.Fail},
		{crashesSlowReader, conform.CheckSlowReader, conform.Fail},
		{noHealth, conform.CheckHealth, conform.Warn},
		{notServing, conform.CheckHealth, conform.Fail},
		{ignoresWindow, conform.CheckAckedDelivery, conform.Fail},
	}
	for _, tc := range tests {
		name := string(tc.flaw)
		if name == "" {
			name = "good"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			addr := startFake(t, &fake{flaw: tc.flaw})
			opts := options(t, addr, validData, invalidData)
			if err := conform.Preflight(t.Context(), opts); err != nil {
				t.Fatalf("preflight: %v", err)
			}
			// The fakes answer StreamEventSource UNIMPLEMENTED but for their flaw: a warning.
			want := map[string]conform.Status{conform.CheckAckedDelivery: conform.Warn}
			if tc.check != "" {
				want[tc.check] = tc.want
			}
			results := conform.Run(t.Context(), opts)
			expect(t, results, want)
			if conform.Failed(results) != (tc.want == conform.Fail) {
				t.Errorf("Failed = %v with %s %s", conform.Failed(results), tc.check, tc.want)
			}
		})
	}
}

// Each fake serving acknowledged delivery with a flaw fails (or warns) exactly the check for it, and
// the one without a flaw, or that lowers the window as the proto allows, passes them all.
func TestAckedServers(t *testing.T) {
	tests := []struct {
		flaw  flaw
		check string
		want  conform.Status
	}{
		{ackedGood, "", conform.Pass},
		{lowersWindow, "", conform.Pass},
		{windowFirstOnly, conform.CheckAckedDelivery, conform.Fail},
		{streamsInvalid, conform.CheckStartInvalid, conform.Fail},
		{keepsCancelled, conform.CheckCancel, conform.Fail},
		{ignoresHalfClose, conform.CheckHalfClose, conform.Warn},
		{acceptsBadAck, conform.CheckBadAck, conform.Warn},
	}
	for _, tc := range tests {
		t.Run(string(tc.flaw), func(t *testing.T) {
			t.Parallel()
			addr := startFake(t, &fake{flaw: tc.flaw})
			var want map[string]conform.Status
			if tc.check != "" {
				want = map[string]conform.Status{tc.check: tc.want}
			}
			results := conform.Run(t.Context(), options(t, addr, validData, invalidData))
			expect(t, results, want)
		})
	}
}

// tickGateway is a gateway on our framework: "interval: D" emits an event every D.
type tickGateway struct{}

type tickConfig struct {
	Interval config.Duration `json:"interval"`
}

func (tickGateway) Type() string { return "tick" }

func (tickGateway) Parse(_, data string) (server.Source, error) {
	var cfg tickConfig
	if err := config.Decode("tick", data, &cfg); err != nil {
		return nil, err
	}
	if cfg.Interval <= 0 {
		return nil, fmt.Errorf("tick.interval: must be positive, got %s", time.Duration(cfg.Interval))
	}
	return tickSource(cfg.Interval), nil
}

type tickSource time.Duration

func (s tickSource) Start(ctx context.Context, emit server.Emit) error {
	t := time.NewTicker(time.Duration(s))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := emit(ctx, server.Event{Payload: []byte(`{}`), ContentType: "application/json"}); err != nil {
				return nil
			}
		}
	}
}

// A gateway on our framework passes every check.
func TestFrameworkGateway(t *testing.T) {
	gw := testenv.StartGateway(t, tickGateway{})
	results := conform.Run(t.Context(), options(t, gw.Addr, "interval: 20ms", "interval: -1s"))
	expect(t, results, nil)
}

// A server that is no gateway is told apart before any check.
func TestPreflightNotAGateway(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	healthpb.RegisterHealthServer(srv, health.NewServer())
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	err = conform.Preflight(t.Context(), options(t, lis.Addr().String(), validData, invalidData))
	if err == nil || !strings.Contains(err.Error(), conform.ErrNotGateway.Error()) {
		t.Fatalf("preflight = %v, want %v", err, conform.ErrNotGateway)
	}
}

// pokeGateway's sources emit only when poked, as a webhook's do when called: "poke: true"
// is valid, anything else is not.
type pokeGateway struct {
	mu    sync.Mutex
	pokes map[string]chan struct{} // by source name, while it runs
}

type pokeConfig struct {
	Poke bool `json:"poke"`
}

func (*pokeGateway) Type() string { return "poke" }

func (g *pokeGateway) Parse(name, data string) (server.Source, error) {
	var cfg pokeConfig
	if err := config.Decode("poke", data, &cfg); err != nil {
		return nil, err
	}
	if !cfg.Poke {
		return nil, fmt.Errorf("poke.poke: must be true")
	}
	return pokeSource{g, name}, nil
}

type pokeSource struct {
	g    *pokeGateway
	name string
}

func (s pokeSource) Start(ctx context.Context, emit server.Emit) error {
	ch := make(chan struct{}, 1)
	s.g.mu.Lock()
	s.g.pokes[s.name] = ch
	s.g.mu.Unlock()
	defer func() {
		s.g.mu.Lock()
		if s.g.pokes[s.name] == ch {
			delete(s.g.pokes, s.name)
		}
		s.g.mu.Unlock()
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ch:
			if err := emit(ctx, server.Event{Payload: []byte("poked")}); err != nil {
				return nil
			}
		}
	}
}

// poke makes the source name emit, if it runs.
func (g *pokeGateway) poke(name string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	ch, ok := g.pokes[name]
	if !ok {
		return fmt.Errorf("no source %q running", name)
	}
	select {
	case ch <- struct{}{}:
	default:
	}
	return nil
}

// Trigger makes the events of sources that have none of their own.
func TestTrigger(t *testing.T) {
	g := &pokeGateway{pokes: map[string]chan struct{}{}}
	gw := testenv.StartGateway(t, g)
	opts := options(t, gw.Addr, "poke: true", "poke: false")
	opts.Trigger = func(_ context.Context, es *gateways.EventSource) error { return g.poke(es.GetName()) }
	opts.TriggerEvery = 20 * time.Millisecond
	expect(t, conform.Run(t.Context(), opts), nil)
}
