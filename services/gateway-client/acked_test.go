package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/eventgate/eventgate/pkg/testenv"
	"github.com/eventgate/eventgate/protos/gateways"
)

// ackSensor is an HTTP sensor whose answer the test sets; it records the event IDs it
// answered 2xx.
type ackSensor struct {
	status   atomic.Int32
	requests atomic.Int32
	mu       sync.Mutex
	took     map[string]bool
}

func startAckSensor(t *testing.T, status int) (*ackSensor, string) {
	s := &ackSensor{took: map[string]bool{}}
	s.status.Store(int32(status))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		s.requests.Add(1)
		st := int(s.status.Load())
		if st/100 == 2 {
			s.mu.Lock()
			s.took[r.Header.Get("Ce-Id")] = true
			s.mu.Unlock()
		}
		w.WriteHeader(st)
	}))
	t.Cleanup(srv.Close)
	return s, srv.URL
}

func (s *ackSensor) has(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.took[id]
}

// ackServer is a gateway server offering StreamEventSource: each call sends events with
// seq 1..events, then reports the acks it gets, each with whether the sensor had already
// taken the event when its ack came.
type ackServer struct {
	gateways.UnimplementedEventingServer
	events  int
	sensor  *ackSensor
	windows chan uint32
	acks    chan gotAck
}

type gotAck struct {
	seq         uint64
	outcome     gateways.Ack_Outcome
	sensorHadIt bool
}

func (s *ackServer) ValidateEventSource(context.Context, *gateways.EventSource) (*gateways.ValidEventSource, error) {
	return &gateways.ValidEventSource{IsValid: true}, nil
}

func eventID(seq uint64) string { return "acked-" + strconv.FormatUint(seq, 10) }

func (s *ackServer) StreamEventSource(stream gateways.Eventing_StreamEventSourceServer) error {
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	s.windows <- first.GetStart().GetWindow()
	for seq := uint64(1); seq <= uint64(s.events); seq++ {
		ev := &gateways.Event{Name: first.GetStart().GetSource().GetName(), Id: eventID(seq), Payload: []byte(`{}`), ContentType: "application/json", Seq: seq}
		if err := stream.Send(ev); err != nil {
			return err
		}
	}
	for {
		msg, err := stream.Recv()
		if err != nil {
			return nil // half-closed or gone
		}
		for _, seq := range msg.GetAck().GetSeqs() {
			s.acks <- gotAck{seq: seq, outcome: msg.GetAck().GetOutcome(), sensorHadIt: s.sensor.has(eventID(seq))}
		}
	}
}

func serveGRPC(t *testing.T, register func(*grpc.Server), opts ...grpc.ServerOption) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(opts...)
	register(srv)
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(lis)
	}()
	t.Cleanup(func() {
		srv.Stop()
		<-done
	})
	return lis.Addr().String()
}

func startAckClient(t *testing.T, server, sensorURL string, extra ...string) {
	t.Helper()
	dir := t.TempDir()
	gwFile, cmFile := filepath.Join(dir, "gateway.yaml"), filepath.Join(dir, "event-sources.yaml")
	if err := os.WriteFile(gwFile, []byte(gatewayManifest), 0o644); err != nil {
		t.Fatal(err)
	}
	writeSources(t, cmFile, map[string]string{"a": "every: 1h"})
	startLocal(t, append([]string{"--gateway", gwFile, "--event-sources", cmFile, "--server", server,
		"--sensor", "every-sensor=" + sensorURL, "--metrics-address", ""}, extra...)...)
}

// Each event is acknowledged DELIVERED only after the sensor answered 2xx for it: a sensor
// answering 500 holds the acks back until it recovers.
func TestAcksOnlyAfterTheSensorTookTheEvent(t *testing.T) {
	sensor, url := startAckSensor(t, http.StatusInternalServerError)
	srv := &ackServer{events: 5, sensor: sensor, windows: make(chan uint32, 10), acks: make(chan gotAck, 100)}
	addr := serveGRPC(t, func(g *grpc.Server) { gateways.RegisterEventingServer(g, srv) })
	startAckClient(t, addr, url, "--ack-window", "16")

	select {
	case w := <-srv.windows:
		if w != 16 {
			t.Fatalf("window %d, want 16 (--ack-window)", w)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("StreamEventSource not called")
	}
	// The sensor fails its deliveries: nothing may be acknowledged meanwhile.
	testenv.Eventually(t, 10*time.Second, 5*time.Millisecond, func() error {
		if n := sensor.requests.Load(); n < 3 {
			return fmt.Errorf("%d failed deliveries so far", n)
		}
		return nil
	})
	select {
	case a := <-srv.acks:
		t.Fatalf("ack %+v while the sensor answers 500", a)
	default:
	}

	sensor.status.Store(http.StatusOK)
	seen := map[uint64]bool{}
	for len(seen) < srv.events {
		select {
		case a := <-srv.acks:
			if a.outcome != gateways.Ack_OUTCOME_DELIVERED || !a.sensorHadIt || seen[a.seq] || a.seq < 1 || a.seq > uint64(srv.events) {
				t.Fatalf("ack %+v (acked before: %v), want each of seq 1..%d DELIVERED once, after the sensor took it", a, seen, srv.events)
			}
			seen[a.seq] = true
		case <-time.After(30 * time.Second):
			t.Fatalf("acks %v after the sensor recovered, want 1..%d", seen, srv.events)
		}
	}
}

// legacyServer answers StreamEventSource UNIMPLEMENTED (the embedded default) and serves
// StartEventSource: two events, then the stream breaks, so that the source is restarted.
type legacyServer struct {
	gateways.UnimplementedEventingServer
	starts atomic.Int32
}

func (s *legacyServer) ValidateEventSource(context.Context, *gateways.EventSource) (*gateways.ValidEventSource, error) {
	return &gateways.ValidEventSource{IsValid: true}, nil
}

func (s *legacyServer) StartEventSource(es *gateways.EventSource, stream gateways.Eventing_StartEventSourceServer) error {
	n := s.starts.Add(1)
	for i := range 2 {
		ev := &gateways.Event{Name: es.GetName(), Id: fmt.Sprintf("legacy-%d-%d", n, i), Payload: []byte(`{}`), ContentType: "application/json"}
		if err := stream.Send(ev); err != nil {
			return err
		}
	}
	if n < 3 {
		return fmt.Errorf("stream %d breaks", n)
	}
	<-stream.Context().Done()
	return nil
}

// A server without StreamEventSource (it answers UNIMPLEMENTED) still gets its sources
// started and their events delivered, on StartEventSource; the fallback is remembered, so
// the restarts of the source do not ask again.
func TestFallsBackToStartEventSourceOnUnimplemented(t *testing.T) {
	sensor, url := startAckSensor(t, http.StatusOK)
	srv := &legacyServer{}
	var streamCalls atomic.Int32
	count := grpc.StreamInterceptor(func(s any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
		if info.FullMethod == gateways.Eventing_StreamEventSource_FullMethodName {
			streamCalls.Add(1)
		}
		return h(s, ss)
	})
	addr := serveGRPC(t, func(g *grpc.Server) { gateways.RegisterEventingServer(g, srv) }, count)
	startAckClient(t, addr, url)

	testenv.Eventually(t, 30*time.Second, 5*time.Millisecond, func() error {
		for n := 1; n <= 3; n++ {
			for i := range 2 {
				if id := fmt.Sprintf("legacy-%d-%d", n, i); !sensor.has(id) {
					return fmt.Errorf("%s not delivered yet", id)
				}
			}
		}
		return nil
	})
	if n := streamCalls.Load(); n != 1 {
		t.Fatalf("StreamEventSource called %d times over 3 starts, want 1 (the fallback remembered)", n)
	}
}

// A v0.10 gateway server knows no StreamEventSource at all: the client falls back and
// delivers its events.
func TestFallsBackWithAV010Server(t *testing.T) {
	sensor, url := startAckSensor(t, http.StatusOK)
	addr := testenv.StartV010Peer(t, testenv.V010Peer{
		Validate: func(testenv.V010Source) (bool, string) { return true, "" },
		Start: func(ctx context.Context, src testenv.V010Source, send func([]byte) error) error {
			for range 3 {
				if err := send([]byte(`{}`)); err != nil {
					return err
				}
			}
			<-ctx.Done()
			return nil
		},
	})
	startAckClient(t, addr, url)
	testenv.Eventually(t, 30*time.Second, 5*time.Millisecond, func() error {
		if n := sensor.requests.Load(); n < 3 {
			return fmt.Errorf("%d events delivered, want 3", n)
		}
		return nil
	})
}

// A client that stops with events not delivered yet tells the server to retry them.
func TestStoppingAsksForRetryOfWhatIsNotDelivered(t *testing.T) {
	sensor, url := startAckSensor(t, http.StatusInternalServerError)
	srv := &ackServer{events: 3, sensor: sensor, windows: make(chan uint32, 10), acks: make(chan gotAck, 100)}
	addr := serveGRPC(t, func(g *grpc.Server) { gateways.RegisterEventingServer(g, srv) })
	dir := t.TempDir()
	gwFile, cmFile := filepath.Join(dir, "gateway.yaml"), filepath.Join(dir, "event-sources.yaml")
	if err := os.WriteFile(gwFile, []byte(gatewayManifest), 0o644); err != nil {
		t.Fatal(err)
	}
	writeSources(t, cmFile, map[string]string{"a": "every: 1h"})
	cfg, err := parseFlags([]string{"--gateway", gwFile, "--event-sources", cmFile, "--server", addr,
		"--sensor", "every-sensor=" + url, "--metrics-address", ""}, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runLocal(ctx, cfg, testenv.Logger(t)) }()
	defer func() {
		cancel()
		<-done
	}()

	testenv.Eventually(t, 10*time.Second, 5*time.Millisecond, func() error {
		if n := sensor.requests.Load(); n < 1 {
			return fmt.Errorf("no delivery attempted yet")
		}
		return nil
	})
	cancel()
	retried := map[uint64]bool{}
	for len(retried) < srv.events {
		select {
		case a := <-srv.acks:
			if a.outcome != gateways.Ack_OUTCOME_RETRY {
				t.Fatalf("ack %+v, want RETRY: the sensor never took it", a)
			}
			retried[a.seq] = true
		case <-time.After(30 * time.Second):
			t.Fatalf("retried %v after the client stopped, want 1..%d", retried, srv.events)
		}
	}
	// Let the client's drain end at once.
	sensor.status.Store(http.StatusOK)
	if err := <-done; err != nil {
		t.Fatalf("runLocal: %v", err)
	}
	done <- nil
}
