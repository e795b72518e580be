package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/eventgate/eventgate/pkg/testenv"
	"github.com/eventgate/eventgate/protos/gateways"
)

// keyServer sends events seq 1..events on each StreamEventSource call, event seq with the
// ordering key key(seq), and reads the acks.
type keyServer struct {
	gateways.UnimplementedEventingServer
	events int
	key    func(seq uint64) string
}

func (s *keyServer) ValidateEventSource(context.Context, *gateways.EventSource) (*gateways.ValidEventSource, error) {
	return &gateways.ValidEventSource{IsValid: true}, nil
}

func (s *keyServer) StreamEventSource(stream gateways.Eventing_StreamEventSourceServer) error {
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	for seq := uint64(1); seq <= uint64(s.events); seq++ {
		ev := &gateways.Event{Name: first.GetStart().GetSource().GetName(), Id: eventID(seq), Payload: []byte(`{}`),
			ContentType: "application/json", Seq: seq, OrderingKey: s.key(seq)}
		if err := stream.Send(ev); err != nil {
			return err
		}
	}
	for {
		if _, err := stream.Recv(); err != nil {
			return nil
		}
	}
}

// heldSensor records the event IDs it takes, in order, and how many requests it held at
// once; hold decides how long each request waits before its 200.
type heldSensor struct {
	mu       sync.Mutex
	inFlight int
	most     int
	took     []string
	hold     func(r *http.Request, inFlight int)
}

func startHeldSensor(t *testing.T, hold func(r *http.Request, inFlight int)) (*heldSensor, string) {
	s := &heldSensor{hold: hold}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		s.mu.Lock()
		s.inFlight++
		s.most = max(s.most, s.inFlight)
		n := s.inFlight
		s.mu.Unlock()
		s.hold(r, n)
		s.mu.Lock()
		s.inFlight--
		s.took = append(s.took, r.Header.Get("Ce-Id"))
		s.mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(srv.Close)
	return s, srv.URL
}

func (s *heldSensor) state() (took []string, most int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.took), s.most
}

// With the default flags, events with distinct ordering keys (a webhook's requests) are at
// the sensor together: the sensor answers none until all eight are there.
func TestDistinctKeysAreDeliveredConcurrently(t *testing.T) {
	const events = 8
	all := make(chan struct{})
	var once sync.Once
	_, url := startHeldSensor(t, func(r *http.Request, inFlight int) {
		if inFlight == events {
			once.Do(func() { close(all) })
		}
		select {
		case <-all:
		case <-r.Context().Done():
		}
	})
	srv := &keyServer{events: events, key: func(seq uint64) string { return "request-" + strconv.FormatUint(seq, 10) }}
	startAckClient(t, serveGRPC(t, func(g *grpc.Server) { gateways.RegisterEventingServer(g, srv) }), url)
	select {
	case <-all:
	case <-time.After(10 * time.Second):
		t.Fatalf("the %d events, each of its own key, never were at the sensor together", events)
	}
}

// Events without an ordering key keep their source's order, one delivery at a time,
// whatever --delivery-concurrency allows (the default's 64 here); so do events of one key.
func TestOneKeyIsDeliveredInOrderOneAtATime(t *testing.T) {
	for _, key := range []string{"", "partition-0"} {
		t.Run(fmt.Sprintf("key %q", key), func(t *testing.T) {
			const events = 30
			// A sensor that takes a moment per event gives concurrent deliveries the
			// time to overlap, if any were made.
			s, url := startHeldSensor(t, func(*http.Request, int) { time.Sleep(2 * time.Millisecond) })
			srv := &keyServer{events: events, key: func(uint64) string { return key }}
			startAckClient(t, serveGRPC(t, func(g *grpc.Server) { gateways.RegisterEventingServer(g, srv) }), url)
			testenv.Eventually(t, 10*time.Second, 5*time.Millisecond, func() error {
				if took, _ := s.state(); len(took) < events {
					return fmt.Errorf("sensor took %d events, want %d", len(took), events)
				}
				return nil
			})
			took, most := s.state()
			var want []string
			for seq := uint64(1); seq <= events; seq++ {
				want = append(want, eventID(seq))
			}
			if !slices.Equal(took, want) {
				t.Errorf("sensor took %v, want %v", took, want)
			}
			if most != 1 {
				t.Errorf("%d deliveries at the sensor at once, want 1", most)
			}
		})
	}
}
