package server_test

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/eventgate/eventgate/pkg/server"
	"github.com/eventgate/eventgate/pkg/testenv"
	"github.com/eventgate/eventgate/protos/gateways"
)

// Deadlines are generous: a passing test ends long before them. quiet is how long a test
// waits to see that nothing more comes; a broken server fails there, a working one never.
const (
	eventWait = 10 * time.Second
	quiet     = 300 * time.Millisecond
)

var (
	delivered = gateways.Ack_OUTCOME_DELIVERED
	retry     = gateways.Ack_OUTCOME_RETRY
	dropped   = gateways.Ack_OUTCOME_DROPPED
)

// nextSeqs takes n events and returns their seqs, checking that they count up from first.
func nextSeqs(t *testing.T, s *testenv.AckedStream, first uint64, n int) []uint64 {
	t.Helper()
	var seqs []uint64
	for i := range n {
		ev := s.Next(t, eventWait)
		if want := first + uint64(i); ev.GetSeq() != want {
			t.Fatalf("event %d: seq %d, want %d", i, ev.GetSeq(), want)
		}
		seqs = append(seqs, ev.GetSeq())
	}
	return seqs
}

func expectNoEvent(t *testing.T, s *testenv.AckedStream) {
	t.Helper()
	if ev, err := s.TryNext(quiet); !errors.Is(err, testenv.ErrNoEvent) {
		t.Fatalf("got event %v (error %v), want none", ev, err)
	}
}

// waitFates waits until every event index in want has exactly the fates listed.
func waitFates(t *testing.T, g *counterGateway, want map[int][]server.Fate) {
	t.Helper()
	testenv.Eventually(t, eventWait, 10*time.Millisecond, func() error {
		for i, w := range want {
			if got := g.fatesOf(i); !slices.Equal(got, w) {
				return fmt.Errorf("event %d: fates %v, want %v", i, got, w)
			}
		}
		return nil
	})
}

func waitEmitted(t *testing.T, g *counterGateway, n int64) {
	t.Helper()
	testenv.Eventually(t, eventWait, 10*time.Millisecond, func() error {
		if got := g.emitted.Load(); got != n {
			return fmt.Errorf("source emitted %d events, want %d", got, n)
		}
		return nil
	})
}

func TestStreamWindowHoldsTheSource(t *testing.T) {
	g := &counterGateway{}
	gw := testenv.StartGateway(t, g)
	s := testenv.OpenAckedStream(t, gw.Client, &gateways.EventSource{Name: "forever", Data: "payloadSize: 8"}, 3)

	nextSeqs(t, s, 1, 3)
	waitEmitted(t, g, 3)
	expectNoEvent(t, s)
	if n := g.emitted.Load(); n != 3 {
		t.Fatalf("source emitted %d events with a window of 3 and no ack", n)
	}

	// One ack frees one slot: exactly one more event.
	s.Ack(t, delivered, 2)
	nextSeqs(t, s, 4, 1)
	waitFates(t, g, map[int][]server.Fate{1: {server.FateDelivered}})
	expectNoEvent(t, s)
	waitEmitted(t, g, 4)
}

func TestStreamClientThatNeverAcksHoldsTheSource(t *testing.T) {
	g := &counterGateway{}
	gw := testenv.StartGateway(t, g)
	const window = 50
	s := testenv.OpenAckedStream(t, gw.Client, &gateways.EventSource{Name: "flood", Data: "payloadSize: 1024"}, window)

	nextSeqs(t, s, 1, window)
	waitEmitted(t, g, window)
	expectNoEvent(t, s)
	expectNoEvent(t, s)
	if n := g.emitted.Load(); n != window {
		t.Fatalf("source emitted %d events to a client that acked none, window %d", n, window)
	}
	// Still a healthy call: an ack lets the source go on.
	s.Ack(t, delivered, 1)
	nextSeqs(t, s, window+1, 1)
}

func TestStreamAcksInAnyOrderAndBatches(t *testing.T) {
	g := &counterGateway{}
	gw := testenv.StartGateway(t, g)
	s := testenv.OpenAckedStream(t, gw.Client, &gateways.EventSource{Name: "six", Data: "count: 6"}, 10)

	nextSeqs(t, s, 1, 6)
	s.Ack(t, delivered, 5, 2)
	s.Ack(t, dropped, 6)
	s.Ack(t, retry, 3, 1)
	// Event index = seq - 1; seq 4 stays unacknowledged.
	waitFates(t, g, map[int][]server.Fate{
		0: {server.FateRetry}, 1: {server.FateDelivered}, 2: {server.FateRetry},
		3: nil, 4: {server.FateDelivered}, 5: {server.FateDropped},
	})

	// The call ends before seq 4 is acknowledged: it is Lost, once.
	s.Close()
	waitFates(t, g, map[int][]server.Fate{
		0: {server.FateRetry}, 1: {server.FateDelivered}, 2: {server.FateRetry},
		3: {server.FateLost}, 4: {server.FateDelivered}, 5: {server.FateDropped},
	})
}

func TestStreamUnackedEventsAreLostAtServerStop(t *testing.T) {
	g := &counterGateway{}
	gw := testenv.StartGateway(t, g)
	s := testenv.OpenAckedStream(t, gw.Client, &gateways.EventSource{Name: "three", Data: "count: 3"}, 5)

	nextSeqs(t, s, 1, 3)
	s.Ack(t, delivered, 1)
	waitFates(t, g, map[int][]server.Fate{0: {server.FateDelivered}})
	if err := gw.Stop(); err != nil {
		t.Fatal(err)
	}
	if code := status.Code(s.End(t, eventWait)); code != codes.Unavailable {
		t.Errorf("call ended with %v, want Unavailable", code)
	}
	waitFates(t, g, map[int][]server.Fate{0: {server.FateDelivered}, 1: {server.FateLost}, 2: {server.FateLost}})
}

func TestStreamHalfCloseEndsTheCall(t *testing.T) {
	g := &counterGateway{}
	gw := testenv.StartGateway(t, g)
	s := testenv.OpenAckedStream(t, gw.Client, &gateways.EventSource{Name: "two", Data: "count: 2"}, 5)

	nextSeqs(t, s, 1, 2)
	s.Ack(t, delivered, 2)
	if err := s.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if err := s.End(t, eventWait); !errors.Is(err, io.EOF) {
		t.Errorf("call ended with %v, want OK", err)
	}
	waitFates(t, g, map[int][]server.Fate{0: {server.FateLost}, 1: {server.FateDelivered}})
}

func TestStreamProtocolErrors(t *testing.T) {
	ack := func(outcome gateways.Ack_Outcome, seqs ...uint64) *gateways.SourceControl {
		return &gateways.SourceControl{Control: &gateways.SourceControl_Ack{Ack: &gateways.Ack{Seqs: seqs, Outcome: outcome}}}
	}
	tests := []struct {
		name string
		// after the first event (seq 1) arrived, the client sends these
		send []*gateways.SourceControl
		msg  string
	}{
		{name: "unknown seq", send: []*gateways.SourceControl{ack(delivered, 99)}, msg: "ack for seq 99: no event with that seq was sent on this call (the last one sent is 1)"},
		{name: "seq 0", send: []*gateways.SourceControl{ack(delivered, 0)}, msg: "ack for seq 0: no event with that seq was sent"},
		{name: "acked twice", send: []*gateways.SourceControl{ack(delivered, 1), ack(retry, 1)}, msg: "ack for seq 1: that event was already acknowledged"},
		{name: "twice in one batch", send: []*gateways.SourceControl{ack(dropped, 1, 1)}, msg: "ack for seq 1: that event was already acknowledged"},
		{name: "unspecified outcome", send: []*gateways.SourceControl{ack(gateways.Ack_OUTCOME_UNSPECIFIED, 1)}, msg: "ack of seqs [1]: outcome must be OUTCOME_DELIVERED, OUTCOME_RETRY or OUTCOME_DROPPED, got OUTCOME_UNSPECIFIED"},
		{name: "second start", send: []*gateways.SourceControl{{Control: &gateways.SourceControl_Start{Start: &gateways.StartSource{}}}}, msg: "StreamEventSource: start may only be the first message of a call"},
		{name: "empty control", send: []*gateways.SourceControl{{}}, msg: "StreamEventSource: a message carries neither a start nor an ack"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := &counterGateway{}
			gw := testenv.StartGateway(t, g)
			s := testenv.OpenAckedStream(t, gw.Client, &gateways.EventSource{Name: "one", Data: "count: 1"}, 5)
			nextSeqs(t, s, 1, 1)
			for _, m := range tc.send {
				if err := s.Send(m); err != nil && !errors.Is(err, io.EOF) {
					t.Fatal(err)
				}
			}
			err := s.End(t, eventWait)
			if status.Code(err) != codes.InvalidArgument || !strings.HasPrefix(status.Convert(err).Message(), tc.msg) {
				t.Fatalf("call ended with %v, want InvalidArgument %q", err, tc.msg)
			}
			// The event's fate is reported once whatever happened: acked, or lost with the call.
			testenv.Eventually(t, eventWait, 10*time.Millisecond, func() error {
				if f := g.fatesOf(0); len(f) != 1 {
					return fmt.Errorf("event 0: fates %v, want exactly one", f)
				}
				return nil
			})
			testenv.Eventually(t, eventWait, 10*time.Millisecond, func() error {
				if n := g.running.Load(); n != 0 {
					return fmt.Errorf("%d sources still running", n)
				}
				return nil
			})
		})
	}
}

func TestStreamStartErrors(t *testing.T) {
	tests := []struct {
		name  string
		first *gateways.SourceControl // nil: the client half-closes without a message
		msg   string
	}{
		{name: "no message", msg: "StreamEventSource: the first message must be a start (SourceControl.start), got none"},
		{name: "ack first", first: &gateways.SourceControl{Control: &gateways.SourceControl_Ack{Ack: &gateways.Ack{Seqs: []uint64{1}, Outcome: delivered}}},
			msg: "StreamEventSource: the first message must be a start (SourceControl.start), got an ack"},
		{name: "no source", first: &gateways.SourceControl{Control: &gateways.SourceControl_Start{Start: &gateways.StartSource{Window: 3}}},
			msg: "StreamEventSource: start.source is missing"},
		{name: "invalid source", first: &gateways.SourceControl{Control: &gateways.SourceControl_Start{Start: &gateways.StartSource{Source: &gateways.EventSource{Name: "bad", Data: "count: -1"}}}},
			msg: "counter.count: must not be negative, got -1"},
	}
	gw := testenv.StartGateway(t, &counterGateway{})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			call, err := gw.Client.StreamEventSource(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if tc.first != nil {
				if err := call.Send(tc.first); err != nil {
					t.Fatal(err)
				}
			}
			if err := call.CloseSend(); err != nil {
				t.Fatal(err)
			}
			_, err = call.Recv()
			if status.Code(err) != codes.InvalidArgument || status.Convert(err).Message() != tc.msg {
				t.Fatalf("call ended with %v, want InvalidArgument %q", err, tc.msg)
			}
		})
	}
}

func TestWindowDefaultAndCap(t *testing.T) {
	for _, tc := range []struct {
		asked uint32
		want  int
	}{
		{0, server.DefaultWindow}, {1, 1}, {256, 256}, {server.MaxWindow, server.MaxWindow},
		{server.MaxWindow + 1, server.MaxWindow}, {1<<32 - 1, server.MaxWindow},
	} {
		if got := server.Window(tc.asked); got != tc.want {
			t.Errorf("Window(%d) = %d, want %d", tc.asked, got, tc.want)
		}
	}
	if server.DefaultWindow != 256 || server.MaxWindow != 10000 {
		t.Errorf("DefaultWindow, MaxWindow = %d, %d: update the README with them", server.DefaultWindow, server.MaxWindow)
	}
}

func TestStreamWindowZeroAndHugeOnTheWire(t *testing.T) {
	for _, tc := range []struct {
		name   string
		asked  uint32
		window int
	}{
		{"zero is the default", 0, server.DefaultWindow},
		{"huge is capped", 1<<32 - 1, server.MaxWindow},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := &counterGateway{}
			gw := testenv.StartGateway(t, g)
			s := testenv.OpenAckedStream(t, gw.Client, &gateways.EventSource{Name: "flood", Data: "count: 0"}, tc.asked)
			nextSeqs(t, s, 1, tc.window)
			waitEmitted(t, g, int64(tc.window))
			expectNoEvent(t, s)
		})
	}
}

func TestStartReportsDeliveredOnSend(t *testing.T) {
	g := &counterGateway{}
	gw := testenv.StartGateway(t, g)
	s := testenv.OpenStream(t, gw.Client, &gateways.EventSource{Name: "two", Data: "count: 2"})
	for range 2 {
		if ev := s.Next(t, eventWait); ev.GetSeq() != 0 {
			t.Errorf("StartEventSource event with seq %d, want 0", ev.GetSeq())
		}
	}
	waitFates(t, g, map[int][]server.Fate{0: {server.FateDelivered}, 1: {server.FateDelivered}})
	s.Close()
	// Nothing more is reported when the call ends.
	if err := gw.Stop(); err != nil {
		t.Fatal(err)
	}
	waitFates(t, g, map[int][]server.Fate{0: {server.FateDelivered}, 1: {server.FateDelivered}})
}
