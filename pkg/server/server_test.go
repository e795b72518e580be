package server_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"

	"github.com/eventgate/eventgate/pkg/config"
	"github.com/eventgate/eventgate/pkg/server"
	"github.com/eventgate/eventgate/pkg/testenv"
	"github.com/eventgate/eventgate/protos/gateways"
)

// counterGateway is a gateway built on the framework for tests: each source emits count
// events (forever when count is 0) of payloadSize bytes, and can be told to fail or panic.
type counterGateway struct {
	emitted atomic.Int64 // events handed over by Emit, across sources
	running atomic.Int64 // sources inside Start

	mu    sync.Mutex
	fates map[int][]server.Fate // by the event's index in its source, across sources
}

// fatesOf returns what OnFate reported for the event with index i.
func (g *counterGateway) fatesOf(i int) []server.Fate {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.fates[i])
}

type counterConfig struct {
	Count        int    `json:"count"`
	PayloadSize  int    `json:"payloadSize"`
	FailWith     string `json:"failWith"`
	PanicOnParse bool   `json:"panicOnParse"`
	PanicOnStart bool   `json:"panicOnStart"`
	// Keys, when set, gives event i the ordering key "k<i mod keys>".
	Keys int `json:"keys"`
}

func (*counterGateway) Type() string { return "counter" }

func (g *counterGateway) Parse(_, data string) (server.Source, error) {
	var cfg counterConfig
	if err := config.Decode("counter", data, &cfg); err != nil {
		return nil, err
	}
	if cfg.PanicOnParse {
		panic("parse exploded")
	}
	var errs config.Errors
	if cfg.Count < 0 {
		errs.Addf("counter.count", "must not be negative, got %d", cfg.Count)
	}
	if cfg.PayloadSize < 0 {
		errs.Addf("counter.payloadSize", "must not be negative, got %d", cfg.PayloadSize)
	}
	if err := errs.Err(); err != nil {
		return nil, err
	}
	return &counterSource{gw: g, cfg: cfg}, nil
}

type counterSource struct {
	gw  *counterGateway
	cfg counterConfig
}

func (s *counterSource) Start(ctx context.Context, emit server.Emit) error {
	s.gw.running.Add(1)
	defer s.gw.running.Add(-1)
	if s.cfg.PanicOnStart {
		panic("start exploded")
	}
	if s.cfg.FailWith != "" {
		return errors.New(s.cfg.FailWith)
	}
	payload := make([]byte, s.cfg.PayloadSize)
	for i := 0; s.cfg.Count == 0 || i < s.cfg.Count; i++ {
		onFate := func(f server.Fate) {
			s.gw.mu.Lock()
			defer s.gw.mu.Unlock()
			if s.gw.fates == nil {
				s.gw.fates = make(map[int][]server.Fate)
			}
			s.gw.fates[i] = append(s.gw.fates[i], f)
		}
		ev := server.Event{Payload: payload, Metadata: map[string]string{"seq": fmt.Sprint(i)}, OnFate: onFate}
		if s.cfg.Keys > 0 {
			ev.OrderingKey = fmt.Sprintf("k%d", i%s.cfg.Keys)
		}
		if err := emit(ctx, ev); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		s.gw.emitted.Add(1)
	}
	<-ctx.Done()
	return nil
}

func TestValidateEventSource(t *testing.T) {
	gw := testenv.StartGateway(t, &counterGateway{})
	tests := []struct {
		name, data string
		valid      bool
		reason     string
	}{
		{name: "valid", data: "count: 3", valid: true},
		{name: "negative count", data: "count: -1", reason: "counter.count: must not be negative, got -1"},
		{name: "every problem listed", data: "count: -1\npayloadSize: -2", reason: "counter.count: must not be negative, got -1; counter.payloadSize: must not be negative, got -2"},
		{name: "unknown field", data: "cuont: 3", reason: `counter: invalid configuration: unknown field "cuont"`},
		{name: "garbage YAML", data: "count: [1, 2", reason: "counter: invalid configuration: "},
		{name: "empty", data: "  ", reason: "counter: configuration is empty"},
		{name: "panicking parser", data: "panicOnParse: true", reason: "counter: configuration could not be parsed (internal error: parse exploded)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := gw.Client.ValidateEventSource(t.Context(), &gateways.EventSource{Name: tc.name, Data: tc.data})
			if err != nil {
				t.Fatalf("ValidateEventSource: %v", err)
			}
			if resp.GetIsValid() != tc.valid {
				t.Fatalf("is_valid = %v, want %v (reason %q)", resp.GetIsValid(), tc.valid, resp.GetReason())
			}
			if !strings.HasPrefix(resp.GetReason(), tc.reason) || (tc.valid && resp.GetReason() != "") {
				t.Errorf("reason = %q, want prefix %q", resp.GetReason(), tc.reason)
			}
		})
	}
}

func TestStartInvalidSourceGivesValidateReason(t *testing.T) {
	gw := testenv.StartGateway(t, &counterGateway{})
	es := &gateways.EventSource{Name: "bad", Data: "count: -5"}
	valid, err := gw.Client.ValidateEventSource(t.Context(), es)
	if err != nil {
		t.Fatal(err)
	}
	stream, err := gw.Client.StartEventSource(t.Context(), es)
	if err != nil {
		t.Fatal(err)
	}
	_, err = stream.Recv()
	st := status.Convert(err)
	if st.Code() != codes.InvalidArgument || st.Message() != valid.GetReason() {
		t.Fatalf("Start = %v %q, want InvalidArgument %q", st.Code(), st.Message(), valid.GetReason())
	}
}

func TestStartStreamsEvents(t *testing.T) {
	gw := testenv.StartGateway(t, &counterGateway{})
	stream, err := gw.Client.StartEventSource(t.Context(), &gateways.EventSource{Id: "id-1", Name: "three", Data: "count: 3\npayloadSize: 4\nkeys: 2"})
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for i := range 3 {
		ev, err := stream.Recv()
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if ev.GetName() != "three" || len(ev.GetPayload()) != 4 || ev.GetMetadata()["seq"] != fmt.Sprint(i) {
			t.Errorf("event %d = %v", i, ev)
		}
		if want := fmt.Sprintf("k%d", i%2); ev.GetOrderingKey() != want {
			t.Errorf("event %d ordering key %q, want %q", i, ev.GetOrderingKey(), want)
		}
		if ev.GetId() == "" || ids[ev.GetId()] {
			t.Errorf("event %d id %q is empty or repeated", i, ev.GetId())
		}
		ids[ev.GetId()] = true
		if age := time.Since(ev.GetTime().AsTime()); age < 0 || age > time.Minute {
			t.Errorf("event %d time %v is not now", i, ev.GetTime().AsTime())
		}
	}
}

func TestCancelStopsOnlyThatSource(t *testing.T) {
	g := &counterGateway{}
	gw := testenv.StartGateway(t, g)
	ctxA, cancelA := context.WithCancel(t.Context())
	a, err := gw.Client.StartEventSource(ctxA, &gateways.EventSource{Name: "a", Data: "count: 1"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := gw.Client.StartEventSource(t.Context(), &gateways.EventSource{Name: "b", Data: "count: 2"})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []gateways.Eventing_StartEventSourceClient{a, b} {
		if _, err := s.Recv(); err != nil {
			t.Fatal(err)
		}
	}
	testenv.Eventually(t, 5*time.Second, 5*time.Millisecond, func() error {
		if n := g.running.Load(); n != 2 {
			return fmt.Errorf("%d sources running, want 2", n)
		}
		return nil
	})
	cancelA()
	testenv.Eventually(t, 5*time.Second, 5*time.Millisecond, func() error {
		if n := g.running.Load(); n != 1 {
			return fmt.Errorf("%d sources running after cancelling a, want 1", n)
		}
		return nil
	})
	if ev, err := b.Recv(); err != nil || ev.GetName() != "b" {
		t.Fatalf("b after a was cancelled: %v, %v", ev, err)
	}
}

func TestFailingSourceEndsItsStreamOnly(t *testing.T) {
	gw := testenv.StartGateway(t, &counterGateway{})
	for _, tc := range []struct{ name, data, message string }{
		{"error", "failWith: broker gone", `event source "error" failed: broker gone`},
		{"panic", "panicOnStart: true", `event source "panic" failed: panic: start exploded`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stream, err := gw.Client.StartEventSource(t.Context(), &gateways.EventSource{Name: tc.name, Data: tc.data})
			if err != nil {
				t.Fatal(err)
			}
			_, err = stream.Recv()
			st := status.Convert(err)
			if st.Code() != codes.Unavailable || !strings.HasPrefix(st.Message(), tc.message) {
				t.Fatalf("Recv = %v %q, want Unavailable %q", st.Code(), st.Message(), tc.message)
			}
		})
	}
	// The server keeps serving.
	if resp, err := gw.Client.ValidateEventSource(t.Context(), &gateways.EventSource{Data: "count: 1"}); err != nil || !resp.GetIsValid() {
		t.Fatalf("validate after failures: %v %v", resp, err)
	}
}

func TestBackPressureBlocksTheSource(t *testing.T) {
	g := &counterGateway{}
	gw := testenv.StartGateway(t, g)
	// 64 KiB events, never-ending: without back-pressure the source would run away.
	stream, err := gw.Client.StartEventSource(t.Context(), &gateways.EventSource{Name: "flood", Data: "payloadSize: 65536"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil {
		t.Fatal(err)
	}
	// Not reading: the source must stall once gRPC's flow-control windows are full.
	var last int64 = -1
	testenv.Eventually(t, 10*time.Second, 100*time.Millisecond, func() error {
		n := g.emitted.Load()
		if n != last {
			last = n
			return fmt.Errorf("source still emitting (%d events)", n)
		}
		return nil
	})
	const bound = 1000 // 64 MiB; the windows hold a few MiB at most
	if last > bound {
		t.Fatalf("source emitted %d events to a client that read 1", last)
	}
	// Reading again lets it go on.
	for range last + 5 {
		if _, err := stream.Recv(); err != nil {
			t.Fatal(err)
		}
	}
	if n := g.emitted.Load(); n <= last {
		t.Fatalf("source did not resume: %d events, stalled at %d", n, last)
	}
}

func TestGracefulStopEndsStreamsAndHealth(t *testing.T) {
	g := &counterGateway{}
	gw := testenv.StartGateway(t, g)
	health := healthpb.NewHealthClient(gw.Conn)
	for _, service := range []string{"", "gateways.Eventing"} {
		resp, err := health.Check(t.Context(), &healthpb.HealthCheckRequest{Service: service})
		if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("health %q = %v, %v; want SERVING", service, resp, err)
		}
	}
	watchCtx, stopWatching := context.WithCancel(t.Context())
	watch, err := health.Watch(watchCtx, &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if resp, err := watch.Recv(); err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health watch = %v, %v", resp, err)
	}

	stream, err := gw.Client.StartEventSource(t.Context(), &gateways.EventSource{Name: "forever", Data: "count: 1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil {
		t.Fatal(err)
	}
	stopped := make(chan error, 1)
	go func() { stopped <- gw.Stop() }()

	if resp, err := watch.Recv(); err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("health watch during stop = %v, %v; want NOT_SERVING", resp, err)
	}
	stopWatching() // a well-behaved watcher leaves; an open call would hold the stop until its timeout
	_, err = stream.Recv()
	if st := status.Convert(err); st.Code() != codes.Unavailable || st.Message() != "gateway server is shutting down" {
		t.Fatalf("stream during stop: %v", err)
	}
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatalf("stop: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("server did not stop within 10s")
	}
	if n := g.running.Load(); n != 0 {
		t.Fatalf("%d sources still running after stop", n)
	}
}

func TestReflectionListsEventing(t *testing.T) {
	gw := testenv.StartGateway(t, &counterGateway{})
	stream, err := reflectionpb.NewServerReflectionClient(gw.Conn).ServerReflectionInfo(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		names = append(names, s.GetName())
	}
	for _, want := range []string{"gateways.Eventing", "grpc.health.v1.Health"} {
		if !strings.Contains(strings.Join(names, " "), want) {
			t.Errorf("reflection lists %v, missing %s", names, want)
		}
	}
	stream.CloseSend()
	if _, err := stream.Recv(); err != io.EOF {
		t.Errorf("reflection stream end: %v", err)
	}
}

func TestStopIsBoundedWhenACallStaysOpen(t *testing.T) {
	gw := testenv.StartGateway(t, &counterGateway{}, server.WithShutdownTimeout(200*time.Millisecond))
	// A health watch that never leaves would hold GracefulStop forever.
	watch, err := healthpb.NewHealthClient(gw.Conn).Watch(t.Context(), &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := watch.Recv(); err != nil {
		t.Fatal(err)
	}
	stopped := make(chan error, 1)
	go func() { stopped <- gw.Stop() }()
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatalf("stop: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("stop was not bounded by the shutdown timeout")
	}
}
