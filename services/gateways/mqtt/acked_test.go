package main

import (
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/eventgate/eventgate/pkg/testenv"
	"github.com/eventgate/eventgate/pkg/testenv/mqttenv"
	"github.com/eventgate/eventgate/protos/gateways"
)

const (
	delivered = gateways.Ack_OUTCOME_DELIVERED
	retry     = gateways.Ack_OUTCOME_RETRY
	dropped   = gateways.Ack_OUTCOME_DROPPED
)

// ackedEvents starts an event source on gw with a StreamEventSource call: its events are
// acknowledged by the test.
func ackedEvents(t testing.TB, gw *testenv.Gateway, data string) *testenv.AckedStream {
	t.Helper()
	return testenv.OpenAckedStream(t, gw.Client, &gateways.EventSource{Name: "test", Data: data}, 100)
}

// seen is an event of an acknowledged call.
type seen struct {
	received
	seq  uint64
	body string
}

// nextAcked reads the next n events.
func nextAcked(t testing.TB, s *testenv.AckedStream, n int) []seen {
	t.Helper()
	out := make([]seen, n)
	for i := range out {
		ev := s.Next(t, 10*time.Second)
		r := testenv.DecodeJSON[received](t, ev)
		out[i] = seen{received: r, seq: ev.GetSeq(), body: r.text(t)}
	}
	return out
}

// waitInflight waits until the broker holds n unacknowledged messages for clientID.
func waitInflight(t testing.TB, b *mqttenv.Broker, clientID string, n int) {
	t.Helper()
	testenv.Eventually(t, 10*time.Second, 2*time.Millisecond, func() error {
		if got := b.Inflight(clientID); got != n {
			return fmt.Errorf("the broker holds %d unacknowledged messages for %q, want %d", got, clientID, n)
		}
		return nil
	})
}

// acked are the message IDs of the acknowledgements clientID sent, in order.
func acked(b *mqttenv.Broker, clientID string) []uint16 {
	var ids []uint16
	for _, a := range b.Acks(clientID) {
		ids = append(ids, a.PacketID)
	}
	return ids
}

// waitAcks waits until clientID sent as many acknowledgements as want, and fails unless
// they are want.
func waitAcks(t testing.TB, b *mqttenv.Broker, clientID string, want []uint16) {
	t.Helper()
	testenv.Eventually(t, 10*time.Second, time.Millisecond, func() error {
		if got := acked(b, clientID); len(got) < len(want) {
			return fmt.Errorf("acknowledged message IDs %v, want %v", got, want)
		}
		return nil
	})
	if got := acked(b, clientID); !slices.Equal(got, want) {
		t.Fatalf("acknowledged message IDs %v, want %v (in the order received, and none whose fate or whose predecessors' is unknown)", got, want)
	}
}

// waitGone waits until clientID is disconnected from the broker.
func waitGone(t testing.TB, b *mqttenv.Broker, clientID string) {
	t.Helper()
	testenv.Eventually(t, 10*time.Second, 2*time.Millisecond, func() error {
		if b.Connected(clientID) {
			return fmt.Errorf("%q still connected", clientID)
		}
		return nil
	})
}

// expectRedelivered reads len(bodies) events and fails unless they are those bodies, in
// any order (a broker resends a resumed session's messages in an order of its own), each
// marked as a duplicate; it returns their seqs.
func expectRedelivered(t testing.TB, s *testenv.AckedStream, bodies ...string) []uint64 {
	t.Helper()
	var got []string
	var seqs []uint64
	for _, e := range nextAcked(t, s, len(bodies)) {
		if !e.Duplicate {
			t.Errorf("redelivered %q not marked as a duplicate", e.body)
		}
		got = append(got, e.body)
		seqs = append(seqs, e.seq)
	}
	slices.Sort(got)
	if want := slices.Sorted(slices.Values(bodies)); !slices.Equal(got, want) {
		t.Fatalf("redelivered %q, want %q", got, want)
	}
	return seqs
}

// Fates acknowledged out of order reach the broker as acknowledgements in the order the
// messages came (MQTT 3.1.1, 4.6), and only once the message and all before it have a
// fate: delivered or dropped.
func TestAcknowledgedInOrderAfterTheFate(t *testing.T) {
	broker := mqttenv.Start(t)
	gw := testenv.StartGateway(t, &gateway{})
	for _, qos := range []byte{1, 2} {
		t.Run(fmt.Sprintf("QoS %d", qos), func(t *testing.T) {
			topic, id := fmt.Sprintf("fate/%d", qos), fmt.Sprintf("fate-q%d", qos)
			s := ackedEvents(t, gw, fmt.Sprintf("url: %s\ntopic: %s\nclientId: %s\nqos: %d\n%s", broker.URL, topic, id, qos, fastBackoff))
			waitSubscribed(t, broker, topic)
			publish(t, broker, topic, "m", 5, qos)
			events := nextAcked(t, s, 5)
			var want []uint16
			for i, e := range events {
				if e.body != "m"+strconv.Itoa(i) || e.QoS != qos {
					t.Fatalf("event %d = %q at QoS %d, want m%d at QoS %d", i, e.body, e.QoS, i, qos)
				}
				want = append(want, e.MessageID)
			}
			if n := broker.Inflight(id); n != 5 {
				t.Fatalf("the broker holds %d of the 5 messages unacknowledged before any fate, want all", n)
			}
			// 3 and 1 are delivered, 4 dropped; 0, then 2 come last. Acknowledged: 0 and 1
			// once 0 is there, the rest once 2 is.
			s.Ack(t, delivered, events[3].seq, events[1].seq)
			s.Ack(t, dropped, events[4].seq)
			s.Ack(t, delivered, events[0].seq)
			waitAcks(t, broker, id, want[:2])
			s.Ack(t, delivered, events[2].seq)
			waitInflight(t, broker, id, 0)
			if got := acked(broker, id); !slices.Equal(got, want) {
				t.Fatalf("the broker got acknowledgements for message IDs %v, want %v (the order received)", got, want)
			}
		})
	}
}

// A message the client asks to retry is not acknowledged: the source reconnects and the
// broker, which kept the session, sends it again, with the message after it (delivered but
// behind it); the one before it stays acknowledged.
func TestRetryHasTheMessageSentAgain(t *testing.T) {
	broker := mqttenv.Start(t)
	gw := testenv.StartGateway(t, &gateway{})
	s := ackedEvents(t, gw, fmt.Sprintf("url: %s\ntopic: again\nclientId: again\n%s", broker.URL, fastBackoff))
	waitSubscribed(t, broker, "again")
	publish(t, broker, "again", "m", 3, 1)
	events := nextAcked(t, s, 3)
	s.Ack(t, delivered, events[2].seq, events[0].seq)
	s.Ack(t, retry, events[1].seq)

	seqs := expectRedelivered(t, s, "m1", "m2")
	if got := acked(broker, "again"); !slices.Equal(got, []uint16{events[0].MessageID}) {
		t.Fatalf("acknowledged message IDs %v before the redelivery was acknowledged, want only m0's %d", got, events[0].MessageID)
	}
	s.Ack(t, delivered, seqs...)
	waitInflight(t, broker, "again", 0)
	publish(t, broker, "again", "after", 1, 1)
	if e := nextAcked(t, s, 1)[0]; e.body != "after0" || e.Duplicate {
		t.Fatalf("got %q (duplicate %t), want the message published after the redelivery", e.body, e.Duplicate)
	}
}

// A call that ends with events unacknowledged (their fate is Lost) leaves them
// unacknowledged at the broker, which sends them again to the next call.
func TestUnacknowledgedAtTheEndOfACallComeAgain(t *testing.T) {
	broker := mqttenv.Start(t)
	gw := testenv.StartGateway(t, &gateway{})
	data := fmt.Sprintf("url: %s\ntopic: lost\nclientId: lost\n%s", broker.URL, fastBackoff)
	first := ackedEvents(t, gw, data)
	waitSubscribed(t, broker, "lost")
	publish(t, broker, "lost", "m", 3, 1)
	events := nextAcked(t, first, 3)
	first.Ack(t, delivered, events[0].seq)
	waitInflight(t, broker, "lost", 2)
	first.Close()
	waitGone(t, broker, "lost")
	if n := broker.Inflight("lost"); n != 2 {
		t.Fatalf("the broker holds %d messages for the session after the call ended, want the 2 never acknowledged", n)
	}

	second := ackedEvents(t, gw, data)
	second.Ack(t, delivered, expectRedelivered(t, second, "m1", "m2")...)
	waitInflight(t, broker, "lost", 0)
}

// With a clean session there is nothing to have a message sent again: a retried one is
// acknowledged anyway (at most once), so that the messages behind it are not held.
func TestCleanSessionRetryIsAtMostOnce(t *testing.T) {
	broker := mqttenv.Start(t)
	gw := testenv.StartGateway(t, &gateway{})
	s := ackedEvents(t, gw, fmt.Sprintf("url: %s\ntopic: clean\nclientId: clean\ncleanSession: true\n%s", broker.URL, fastBackoff))
	waitSubscribed(t, broker, "clean")
	publish(t, broker, "clean", "m", 2, 1)
	events := nextAcked(t, s, 2)
	s.Ack(t, delivered, events[1].seq)
	s.Ack(t, retry, events[0].seq)
	waitAcks(t, broker, "clean", []uint16{events[0].MessageID, events[1].MessageID})
	waitInflight(t, broker, "clean", 0)
	publish(t, broker, "clean", "after", 1, 1)
	if e := nextAcked(t, s, 1)[0]; e.body != "after0" {
		t.Fatalf("got %q, want the message published after the retry: nothing is sent again", e.body)
	}
}

// With a broker that keeps its sessions across a restart, restarts in the middle of a
// stream lose nothing: what the gateway had not acknowledged when the broker stopped, and
// what was published while the gateway was reconnecting, come (again).
func TestBrokerRestartWithStorageLosesNothing(t *testing.T) {
	broker := mqttenv.Start(t, mqttenv.WithStorage(t.TempDir()))
	gw := testenv.StartGateway(t, &gateway{})
	s := ackedEvents(t, gw, fmt.Sprintf("url: %s\ntopic: kept\nclientId: kept\n%s", broker.URL, fastBackoff))
	waitSubscribed(t, broker, "kept")
	l := newLedger("kept")
	for round := range 3 {
		l.publish(t, broker, fmt.Sprintf("before%d-", round), 100)
		broker.Restart()
		l.publish(t, broker, fmt.Sprintf("after%d-", round), 100)
		l.receiveAllAcking(t, s)
	}
	l.drainAcking(t, s, broker, "kept")
	t.Logf("published %d, all delivered, %d of them twice (marked as duplicates)", len(l.published), l.duplicates)
}

// receiveAllAcking is receiveAll on an acknowledged call, acknowledging each event as
// delivered.
func (l *ledger) receiveAllAcking(t testing.TB, s *testenv.AckedStream) {
	t.Helper()
	for len(l.seen) < len(l.published) {
		l.takeAcking(t, s, nextAcked(t, s, 1)[0])
	}
}

// drainAcking acknowledges the duplicates still coming on s, until the broker holds
// nothing unacknowledged for clientID.
func (l *ledger) drainAcking(t testing.TB, s *testenv.AckedStream, b *mqttenv.Broker, clientID string) {
	t.Helper()
	testenv.Eventually(t, 10*time.Second, time.Millisecond, func() error {
		for ev := s.Queued(); ev != nil; ev = s.Queued() {
			r := testenv.DecodeJSON[received](t, ev)
			l.takeAcking(t, s, seen{received: r, seq: ev.GetSeq(), body: r.text(t)})
		}
		if n := b.Inflight(clientID); n != 0 {
			return fmt.Errorf("the broker holds %d unacknowledged messages for %q", n, clientID)
		}
		return nil
	})
}

// takeAcking records e and acknowledges it as delivered.
func (l *ledger) takeAcking(t testing.TB, s *testenv.AckedStream, e seen) {
	t.Helper()
	switch {
	case e.Topic != l.topic || !l.published[e.body]:
		t.Fatalf("event %+v (body %q) was not published", e.received, e.body)
	case l.seen[e.body] && !e.Duplicate:
		t.Fatalf("%q delivered twice, the second time not marked as a duplicate", e.body)
	case l.seen[e.body]:
		l.duplicates++
	}
	l.seen[e.body] = true
	s.Ack(t, delivered, e.seq)
}

// A new source (after a gateway restart, or the next call of a client) on a kept session
// where more messages wait than the source buffers (pendingMessages): the broker sends
// them before it answers the new subscription, so they must be consumed while the
// subscription is pending. They all arrive and the session is drained, and what is
// published afterwards arrives too.
func TestBacklogBeforeTheSubscriptionIsAnswered(t *testing.T) {
	broker := mqttenv.Start(t)
	gw := testenv.StartGateway(t, &gateway{})
	data := fmt.Sprintf("url: %s\ntopic: backlog\nclientId: backlog\n%s", broker.URL, fastBackoff)
	first := ackedEvents(t, gw, data)
	waitSubscribed(t, broker, "backlog")
	first.Close()
	waitGone(t, broker, "backlog")

	l := newLedger("backlog")
	backlog := 4 * pendingMessages
	l.publish(t, broker, "away-", backlog)
	waitInflight(t, broker, "backlog", backlog)
	second := ackedEvents(t, gw, data)
	l.receiveAllAcking(t, second)
	l.drainAcking(t, second, broker, "backlog")
	l.publish(t, broker, "back-", 10)
	l.receiveAllAcking(t, second)
	l.drainAcking(t, second, broker, "backlog")
}

// With the call's window full and more messages behind it than the source buffers, the
// handler waits and paho reads nothing more from the connection; the acknowledgements of
// the events the client settles meanwhile still reach the broker (they are written apart
// from the reading), and once the client takes the rest, everything is delivered.
func TestAcksFlowWhileTheWindowIsFull(t *testing.T) {
	const window = 100 // ackedEvents'
	broker := mqttenv.Start(t)
	gw := testenv.StartGateway(t, &gateway{})
	s := ackedEvents(t, gw, fmt.Sprintf("url: %s\ntopic: full\nclientId: full\n%s", broker.URL, fastBackoff))
	waitSubscribed(t, broker, "full")
	l := newLedger("full")
	l.publish(t, broker, "m", window+2*pendingMessages)

	held := nextAcked(t, s, window)
	var settled []uint16
	for _, e := range held[:window/2] {
		l.takeAcking(t, s, e)
		settled = append(settled, e.MessageID)
	}
	// Half the window freed lets half a window more through: the handler still waits.
	waitAcks(t, broker, "full", settled)
	for _, e := range held[window/2:] {
		l.takeAcking(t, s, e)
	}
	l.receiveAllAcking(t, s)
	l.drainAcking(t, s, broker, "full")
}
