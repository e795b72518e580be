package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"slices"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/eventgate/eventgate/pkg/server"
	"github.com/eventgate/eventgate/pkg/testenv"
	"github.com/eventgate/eventgate/pkg/testenv/amqpenv"
	"github.com/eventgate/eventgate/protos/gateways"
)

const (
	delivered = gateways.Ack_OUTCOME_DELIVERED
	retry     = gateways.Ack_OUTCOME_RETRY
)

// queueState is what the broker says of queue: the messages ready to be delivered (not
// those delivered and unacknowledged) and the consumers.
func queueState(t testing.TB, url, queue string) (ready, consumers int) {
	t.Helper()
	ch, closeConn := brokerChannel(t, url)
	defer closeConn()
	q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
	if err != nil {
		t.Fatalf("inspect queue %q: %v", queue, err)
	}
	return q.Messages, q.Consumers
}

// waitReady waits until queue holds n messages ready to be delivered.
func waitReady(t testing.TB, url, queue string, n int) {
	t.Helper()
	testenv.Eventually(t, 10*time.Second, 10*time.Millisecond, func() error {
		if ready, _ := queueState(t, url, queue); ready != n {
			return fmt.Errorf("queue %q: %d messages ready, want %d", queue, ready, n)
		}
		return nil
	})
}

// waitNoConsumer waits until the sessions of ended calls are gone from queue, so that a
// message published next cannot go to one of them.
func waitNoConsumer(t testing.TB, url, queue string) {
	t.Helper()
	testenv.Eventually(t, 10*time.Second, 10*time.Millisecond, func() error {
		if _, consumers := queueState(t, url, queue); consumers != 0 {
			return fmt.Errorf("queue %q: %d consumers, want none", queue, consumers)
		}
		return nil
	})
}

// ackedSource declares the test's durable queue, publishes bodies to it, and returns a
// source consuming it through sourceURL with the extra configuration.
func ackedSource(t *testing.T, b *amqpenv.Broker, sourceURL, extra string, bodies ...string) (es *gateways.EventSource, exchange, queue string) {
	t.Helper()
	exchange, queue = names(t)
	declareQueue(t, b.URL, exchange, "direct", queue, "k")
	publish(t, b.URL, exchange, "k", texts(true, bodies...)...)
	data := fmt.Sprintf("url: %s\nexchangeName: %s\nexchangeType: direct\nroutingKey: k\nbackoff: {duration: 10ms, factor: 1}\nqueueDeclare: {name: %s, durable: true}\n%s", sourceURL, exchange, queue, extra)
	return &gateways.EventSource{Name: "acked", Data: data}, exchange, queue
}

// endCall half-closes s, as a client that has no more acks to send, and waits until the
// server ends the call: it read every ack sent before, and the events still
// unacknowledged are lost.
func endCall(t testing.TB, s *testenv.AckedStream) {
	t.Helper()
	if err := s.CloseSend(); err != nil {
		t.Fatalf("half-close: %v", err)
	}
	if err := s.End(t, 30*time.Second); !errors.Is(err, io.EOF) {
		t.Fatalf("the call ended with %v, want OK", err)
	}
}

// nextAcked is the next event of s: its seq, body and payload.
func nextAcked(t testing.TB, s *testenv.AckedStream) (uint64, string, received) {
	t.Helper()
	ev := s.Next(t, 30*time.Second)
	r := decode(t, ev.GetPayload())
	return ev.GetSeq(), r.text(t), r
}

// expectOnly checks that the next call on queue gets exactly want (in any order, then the
// end marker it publishes), each redelivered as wantRedelivered says: what the previous
// calls left to the broker, and nothing they acknowledged.
func expectOnly(t *testing.T, gw *testenv.Gateway, b *amqpenv.Broker, es *gateways.EventSource, exchange, queue string, want []string, wantRedelivered bool) {
	t.Helper()
	waitNoConsumer(t, b.URL, queue)
	s := testenv.OpenAckedStream(t, gw.Client, es, 0)
	defer s.Close()
	publish(t, b.URL, exchange, "k", texts(true, "end")...)
	var got []string
	for {
		seq, body, r := nextAcked(t, s)
		s.Ack(t, delivered, seq)
		if body == "end" {
			break
		}
		got = append(got, body)
		if r.Redelivered != wantRedelivered {
			t.Errorf("%s: redelivered %t, want %t", body, r.Redelivered, wantRedelivered)
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("the next call got %v before the end, want %v", got, want)
	}
}

// The broker hands out prefetch messages and no more until one is acknowledged: with 3
// delivered and no ack from the client, nothing was acknowledged upstream, whatever the
// gateway's hand-off did.
func TestNothingAckedBeforeTheClientAcks(t *testing.T) {
	b := amqpenv.Start(t)
	gw := testenv.StartGateway(t, gateway{})
	sent := testenv.Numbered("msg", 0, 5)
	es, exchange, queue := ackedSource(t, b, b.URL, "consume: {prefetch: 3}", sent...)
	s := testenv.OpenAckedStream(t, gw.Client, es, 0)

	for i := range 3 {
		if seq, body, _ := nextAcked(t, s); seq != uint64(i+1) || body != sent[i] {
			t.Fatalf("event %d: seq %d body %q, want seq %d body %q", i, seq, body, i+1, sent[i])
		}
	}
	waitReady(t, b.URL, queue, 2)
	// An ack to the broker would free a prefetch slot at once: the fourth would come.
	if ev, err := s.TryNext(500 * time.Millisecond); !errors.Is(err, testenv.ErrNoEvent) {
		t.Fatalf("a fourth event (%v, %v) before the client acknowledged any", ev, err)
	}
	if ready, _ := queueState(t, b.URL, queue); ready != 2 {
		t.Fatalf("%d messages ready, want 2: the broker got an ack the client never gave", ready)
	}

	s.Ack(t, delivered, 2)
	if seq, body, _ := nextAcked(t, s); seq != 4 || body != sent[3] {
		t.Fatalf("after one ack: seq %d body %q, want seq 4 %q", seq, body, sent[3])
	}
	waitReady(t, b.URL, queue, 1)
	s.Ack(t, delivered, 3, 1)
	if seq, body, _ := nextAcked(t, s); seq != 5 || body != sent[4] {
		t.Fatalf("after two more acks: seq %d body %q, want seq 5 %q", seq, body, sent[4])
	}
	waitReady(t, b.URL, queue, 0)
	s.Ack(t, delivered, 5, 4)
	endCall(t, s)
	expectOnly(t, gw, b, es, exchange, queue, nil, false)
}

// Acks in any order and batches settle exactly the deliveries they name: the call ends
// with the others unacknowledged, and only those come again.
func TestAcksOutOfOrderSettleWhatTheyName(t *testing.T) {
	b := amqpenv.Start(t)
	gw := testenv.StartGateway(t, gateway{})
	sent := testenv.Numbered("msg", 1, 8) // msg-00N has seq N
	es, exchange, queue := ackedSource(t, b, b.URL, "", sent...)
	s := testenv.OpenAckedStream(t, gw.Client, es, 0)
	for range sent {
		nextAcked(t, s)
	}
	for _, seqs := range [][]uint64{{8}, {3, 6}, {1}, {7, 2}} {
		s.Ack(t, delivered, seqs...)
	}
	// The call must still hold seqs 4 and 5: acknowledging them says so (a seq that is
	// not unacknowledged ends the call with InvalidArgument), and they go back by retry.
	s.Ack(t, retry, 5, 4)
	for range 2 {
		seq, body, r := nextAcked(t, s)
		if (body != "msg-004" && body != "msg-005") || !r.Redelivered {
			t.Fatalf("after the acks and a retry of 4 and 5: seq %d %q (redelivered %t), want msg-004 and msg-005 again", seq, body, r.Redelivered)
		}
	}
	endCall(t, s) // seqs 9 and 10 unacknowledged: lost
	expectOnly(t, gw, b, es, exchange, queue, []string{"msg-004", "msg-005"}, true)
}

// A retry sends the message back to the queue: it comes again on the same call, with the
// redelivered flag, and the others are not repeated.
func TestRetryRequeues(t *testing.T) {
	b := amqpenv.Start(t)
	gw := testenv.StartGateway(t, gateway{})
	sent := testenv.Numbered("msg", 0, 3)
	es, exchange, queue := ackedSource(t, b, b.URL, "", sent...)
	s := testenv.OpenAckedStream(t, gw.Client, es, 0)
	for i := range sent {
		if _, body, r := nextAcked(t, s); body != sent[i] || r.Redelivered {
			t.Fatalf("event %d: %q redelivered %t, want %q first time", i, body, r.Redelivered, sent[i])
		}
	}
	s.Ack(t, retry, 2)
	s.Ack(t, delivered, 1, 3)
	seq, body, r := nextAcked(t, s)
	if seq != 4 || body != sent[1] || !r.Redelivered {
		t.Fatalf("after a retry of seq 2: seq %d %q redelivered %t, want seq 4 %q redelivered", seq, body, r.Redelivered, sent[1])
	}
	s.Ack(t, delivered, 4)
	endCall(t, s)
	expectOnly(t, gw, b, es, exchange, queue, nil, false)
}

// A call that ends with events unacknowledged (their fate is Lost) leaves them to the
// broker: the next call gets them again, and not the one acknowledged.
func TestUnacknowledgedAtTheEndOfACallComeAgain(t *testing.T) {
	b := amqpenv.Start(t)
	gw := testenv.StartGateway(t, gateway{})
	sent := testenv.Numbered("msg", 0, 3)
	es, exchange, queue := ackedSource(t, b, b.URL, "", sent...)
	s := testenv.OpenAckedStream(t, gw.Client, es, 0)
	for range sent {
		nextAcked(t, s)
	}
	s.Ack(t, delivered, 2)
	endCall(t, s)
	expectOnly(t, gw, b, es, exchange, queue, []string{sent[0], sent[2]}, true)
}

// Delivery tags belong to their channel: acks that come after a reconnect, for deliveries
// of the lost connection, must not settle the new channel's deliveries of the same tags
// (the broker redelivered those same messages there).
func TestAcksOfALostConnectionSettleNothingOnTheNext(t *testing.T) {
	b := amqpenv.Start(t)
	gw := testenv.StartGateway(t, gateway{})
	u, err := url.Parse(b.URL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := testenv.StartProxy(t, u.Host)
	proxied := *u
	proxied.Host = proxy.Addr
	sent := testenv.Numbered("msg", 0, 2)
	es, exchange, queue := ackedSource(t, b, proxied.String(), "", sent...)
	s := testenv.OpenAckedStream(t, gw.Client, es, 0)
	for range sent {
		nextAcked(t, s)
	}
	proxy.Cut()
	waitNoConsumer(t, b.URL, queue)
	proxy.Restore()
	for i := range sent {
		seq, body, r := nextAcked(t, s)
		if seq != uint64(3+i) || body != sent[i] || !r.Redelivered || r.DeliveryTag != uint64(1+i) {
			t.Fatalf("after the reconnect: seq %d %q redelivered %t tag %d, want seq %d %q redelivered with tag %d", seq, body, r.Redelivered, r.DeliveryTag, 3+i, sent[i], 1+i)
		}
	}
	s.Ack(t, delivered, 1, 2) // the first connection's tags 1 and 2
	endCall(t, s)             // seqs 3 and 4, the same messages on the second channel: lost
	expectOnly(t, gw, b, es, exchange, queue, sent, true)
}

// autoAck stays at most once: the broker forgets a message once it sent it, so what the
// client never acknowledged is not delivered again.
func TestAutoAckIsAtMostOnce(t *testing.T) {
	b := amqpenv.Start(t)
	gw := testenv.StartGateway(t, gateway{})
	sent := testenv.Numbered("msg", 0, 3)
	es, exchange, queue := ackedSource(t, b, b.URL, "consume: {autoAck: true}", sent...)
	s := testenv.OpenAckedStream(t, gw.Client, es, 0)
	for range sent {
		nextAcked(t, s)
	}
	waitReady(t, b.URL, queue, 0)
	endCall(t, s)
	expectOnly(t, gw, b, es, exchange, queue, nil, false)
}

// A delivery the acker rejects (one that could not be made into an event) goes to the
// queue's dead-letter exchange, not back to the queue, and the Ack up to a later tag goes
// out past it.
func TestRejectDeadLetters(t *testing.T) {
	b := amqpenv.Start(t)
	exchange, queue := names(t)
	dlx, dlq := exchange+"-dead", queue+"-dead"
	declareQueue(t, b.URL, dlx, "fanout", dlq, "")
	declareQueueWith(t, b.URL, exchange, "direct", queue, "k", amqp.Table{"x-dead-letter-exchange": dlx})
	publish(t, b.URL, exchange, "k", texts(true, "ok-1", "bad", "ok-2")...)

	ch, closeConn := brokerChannel(t, b.URL)
	defer closeConn()
	deliveries, err := ch.Consume(queue, "", false, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	acks := newAcker(ch, 10, slog.Default())
	end, settled := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(settled)
		acks.run(end)
	}()
	for range 3 {
		select {
		case d := <-deliveries:
			if string(d.Body) == "bad" {
				acks.reject(d.DeliveryTag)
			} else {
				acks.onFate(d.DeliveryTag)(server.FateDelivered)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no delivery within 10s")
		}
	}
	close(end)
	<-settled
	closeConn() // what is unacknowledged would go back to the queue

	waitReady(t, b.URL, dlq, 1)
	if ready, _ := queueState(t, b.URL, queue); ready != 0 {
		t.Errorf("%d messages back in the queue, want none", ready)
	}
}

func TestLedgerAcknowledgesThePrefixAtOnce(t *testing.T) {
	type step struct {
		requeued  uint64 // settled by a requeue first, when not 0
		acks      []uint64
		upTo      uint64
		single    []uint64
		wantFloor uint64
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"in order", []step{{acks: []uint64{1, 2, 3}, upTo: 3, wantFloor: 3}, {acks: []uint64{4}, upTo: 4, wantFloor: 4}}},
		{"a gap", []step{{acks: []uint64{1, 3}, upTo: 1, single: []uint64{3}, wantFloor: 1}}},
		{"the gap filled", []step{
			{acks: []uint64{3, 4}, single: []uint64{3, 4}},
			{acks: []uint64{1}, upTo: 1, wantFloor: 1},
			// 2 extends the prefix over 3 and 4, acknowledged already.
			{acks: []uint64{2}, upTo: 2, wantFloor: 4},
		}},
		{"a requeue in the prefix", []step{
			{acks: []uint64{1}, upTo: 1, wantFloor: 1},
			{requeued: 2, acks: []uint64{3, 4}, upTo: 4, wantFloor: 4},
		}},
		{"a requeue above", []step{{requeued: 2, acks: []uint64{1, 3}, upTo: 3, wantFloor: 3}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var l ledger
			for i, s := range tc.steps {
				if s.requeued != 0 {
					l.settled(s.requeued)
				}
				upTo, single := l.acknowledge(s.acks)
				slices.Sort(single)
				if upTo != s.upTo || !slices.Equal(single, s.single) || l.floor != s.wantFloor {
					t.Errorf("step %d, acks %v: Ack up to %d, singles %v, floor %d; want up to %d, singles %v, floor %d",
						i, s.acks, upTo, single, l.floor, s.upTo, s.single, s.wantFloor)
				}
			}
		})
	}
}
