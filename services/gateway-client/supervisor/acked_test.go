package supervisor

import (
	"context"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/eventgate/eventgate/pkg/testenv"
	"github.com/eventgate/eventgate/protos/gateways"
)

// burstServer sends events seq 1..events on each StreamEventSource call, then reports
// every Ack message it gets.
type burstServer struct {
	gateways.UnimplementedEventingServer
	events int
	acks   chan *gateways.Ack
}

func (s *burstServer) ValidateEventSource(context.Context, *gateways.EventSource) (*gateways.ValidEventSource, error) {
	return &gateways.ValidEventSource{IsValid: true}, nil
}

func (s *burstServer) StreamEventSource(stream gateways.Eventing_StreamEventSourceServer) error {
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	for seq := uint64(1); seq <= uint64(s.events); seq++ {
		if err := stream.Send(&gateways.Event{Name: first.GetStart().GetSource().GetName(), Payload: []byte(`{}`), Seq: seq}); err != nil {
			return err
		}
	}
	for {
		msg, err := stream.Recv()
		if err != nil {
			return nil
		}
		s.acks <- msg.GetAck()
	}
}

// burst starts a source on a burstServer of events, with a supervisor whose handler hands
// each event's ack to the test.
func burst(t *testing.T, events int, linger time.Duration) (*burstServer, []heldEvent) {
	t.Helper()
	srv := &burstServer{events: events, acks: make(chan *gateways.Ack, events)}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer()
	gateways.RegisterEventingServer(g, srv)
	go g.Serve(lis)
	t.Cleanup(g.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })

	handled := make(chan heldEvent, events)
	handle := func(_ context.Context, _ string, ev *gateways.Event, ack func(gateways.Ack_Outcome)) error {
		handled <- heldEvent{ev.GetSeq(), ack}
		return nil
	}
	sup := New(conn, nil, Options{AckHandler: handle, AckLinger: linger, Log: testenv.Logger(t)})
	t.Cleanup(sup.Stop)
	sup.Apply([]Source{{Name: "burst", Data: "{}"}})

	var all []heldEvent
	for len(all) < events {
		select {
		case h := <-handled:
			all = append(all, h)
		case <-time.After(10 * time.Second):
			t.Fatalf("%d events handled, want %d", len(all), events)
		}
	}
	return srv, all
}

type heldEvent struct {
	seq uint64
	ack func(gateways.Ack_Outcome)
}

func nextAck(t *testing.T, srv *burstServer, within time.Duration) *gateways.Ack {
	t.Helper()
	select {
	case a := <-srv.acks:
		return a
	case <-time.After(within):
		t.Fatalf("no Ack message within %s", within)
		return nil
	}
}

// An ack waits (up to the linger, here far longer than the test) for the acks of the
// other events in flight to share its message, each outcome in its own, at most
// ackBatchMax seqs a message; every seq is acknowledged once, with its handler's outcome.
func TestAcksShareMessagesWhileOthersAreInFlight(t *testing.T) {
	const events = ackBatchMax + 72
	srv, held := burst(t, events, time.Hour)
	want := func(seq uint64) gateways.Ack_Outcome {
		if seq%3 == 0 {
			return gateways.Ack_OUTCOME_DROPPED
		}
		return gateways.Ack_OUTCOME_DELIVERED
	}
	held[0].ack(want(held[0].seq))
	// The first ack is held back while the others are in flight: nothing on the wire yet.
	select {
	case a := <-srv.acks:
		t.Fatalf("Ack %v sent alone while %d events were in flight", a.GetSeqs(), events-1)
	case <-time.After(100 * time.Millisecond):
	}
	for _, h := range held[1:] {
		h.ack(want(h.seq))
	}
	acked := map[uint64]bool{}
	messages := 0
	for len(acked) < events {
		a := nextAck(t, srv, 10*time.Second)
		messages++
		if len(a.GetSeqs()) > ackBatchMax {
			t.Errorf("an Ack of %d seqs, want at most %d", len(a.GetSeqs()), ackBatchMax)
		}
		for _, seq := range a.GetSeqs() {
			if acked[seq] || a.GetOutcome() != want(seq) {
				t.Fatalf("seq %d acked %v (acked before: %v), want %v once", seq, a.GetOutcome(), acked[seq], want(seq))
			}
			acked[seq] = true
		}
	}
	// Two batches (the bound, then the rest), each of two outcomes.
	if messages > 4 {
		t.Errorf("%d Ack messages for %d acks, want at most 4", messages, events)
	}
}

// An ack with nothing else in flight goes at once, whatever the linger: an idle source's
// events are not delayed.
func TestAnAckAloneIsNotHeldBack(t *testing.T) {
	srv, held := burst(t, 1, time.Hour)
	held[0].ack(gateways.Ack_OUTCOME_DELIVERED)
	if a := nextAck(t, srv, 10*time.Second); len(a.GetSeqs()) != 1 || a.GetSeqs()[0] != 1 {
		t.Fatalf("Ack of %v, want seq 1", a.GetSeqs())
	}
}

// A lingering ack goes as soon as every other event in flight is acknowledged too, in one
// message with theirs, however long the linger: there is nothing left to wait for.
func TestAckLingerEndsWhenNothingElseIsInFlight(t *testing.T) {
	srv, held := burst(t, 3, time.Hour)
	held[0].ack(gateways.Ack_OUTCOME_DELIVERED)
	held[1].ack(gateways.Ack_OUTCOME_DELIVERED)
	// Seq 3 is still in flight: the two acks wait for it.
	select {
	case a := <-srv.acks:
		t.Fatalf("Ack %v sent while seq 3 was in flight", a.GetSeqs())
	case <-time.After(100 * time.Millisecond):
	}
	held[2].ack(gateways.Ack_OUTCOME_DELIVERED)
	a := nextAck(t, srv, 10*time.Second)
	if got := a.GetSeqs(); len(got) != 3 {
		t.Fatalf("Ack of %v, want seqs 1, 2 and 3 in one message", got)
	}
}

// An ack lingers longer only while more than half the window is unacknowledged, and never
// when lingering is off.
func TestAckLingerGrowsWhenTheWindowFillsUp(t *testing.T) {
	for _, tc := range []struct {
		set         time.Duration
		outstanding int
		linger      time.Duration
	}{
		{set: DefaultAckLinger, outstanding: 64, linger: DefaultAckLinger},
		{set: DefaultAckLinger, outstanding: 128, linger: DefaultAckLinger},
		{set: DefaultAckLinger, outstanding: 129, linger: busyAckLinger},
		{set: 10 * time.Millisecond, outstanding: 256, linger: 10 * time.Millisecond},
		{set: NoAckLinger, outstanding: 256, linger: NoAckLinger},
	} {
		if got := ackLinger(tc.set, tc.outstanding, 256); got != tc.linger {
			t.Errorf("ackLinger(%v, %d of 256) = %v, want %v", tc.set, tc.outstanding, got, tc.linger)
		}
	}
}
