package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventgate/eventgate/pkg/sensorsink"
	"github.com/eventgate/eventgate/pkg/testenv"
	"github.com/eventgate/eventgate/pkg/testenv/natsenv"
	"github.com/eventgate/eventgate/protos/gateways"
)

const (
	delivered = gateways.Ack_OUTCOME_DELIVERED
	retry     = gateways.Ack_OUTCOME_RETRY
	dropped   = gateways.Ack_OUTCOME_DROPPED
)

// jsEnv is a JetStream server holding the stream ORDERS (subjects orders.>), and a client
// of the test's own to publish and to read the consumers' state.
type jsEnv struct {
	ns       *natsserver.Server
	storeDir string
	js       jetstream.JetStream
}

func startJetStream(t *testing.T) *jsEnv {
	t.Helper()
	e := &jsEnv{storeDir: t.TempDir()}
	e.ns = natsenv.StartJetStream(t, -1, e.storeDir)
	e.connect(t)
	if _, err := e.js.CreateStream(t.Context(), jetstream.StreamConfig{Name: "ORDERS", Subjects: []string{"orders.>"}}); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *jsEnv) connect(t *testing.T) {
	t.Helper()
	js, err := jetstream.New(connect(t, e.ns.ClientURL()))
	if err != nil {
		t.Fatal(err)
	}
	e.js = js
}

// source is the config of a JetStream source on ORDERS through consumer, with extra fields
// of the jetStream block (", ackWait: 1s").
func (e *jsEnv) source(consumer, extra string) string {
	return fmt.Sprintf("url: %s\nsubject: orders.*\n%s\njetStream: {stream: ORDERS, consumer: %s%s}", e.ns.ClientURL(), fastBackoff, consumer, extra)
}

// publish stores bodies "<prefix>from" .. "<prefix>to-1" on orders.created.
func (e *jsEnv) publish(t *testing.T, prefix string, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		if _, err := e.js.Publish(t.Context(), "orders.created", []byte(prefix+strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
}

// waitConsumer waits until cond accepts the state of consumer on ORDERS.
func (e *jsEnv) waitConsumer(t *testing.T, consumer string, cond func(*jetstream.ConsumerInfo) error) {
	t.Helper()
	testenv.Eventually(t, 10*time.Second, 10*time.Millisecond, func() error {
		c, err := e.js.Consumer(t.Context(), "ORDERS", consumer)
		if err != nil {
			return err
		}
		info, err := c.Info(t.Context())
		if err != nil {
			return err
		}
		return cond(info)
	})
}

// acked is a consumer condition: floor is the stream sequence below which (and at which)
// every message is acknowledged, pending how many are delivered and not acknowledged.
func acked(floor uint64, pending int) func(*jetstream.ConsumerInfo) error {
	return func(c *jetstream.ConsumerInfo) error {
		if c.AckFloor.Stream != floor || c.NumAckPending != pending {
			return fmt.Errorf("ack floor %d with %d unacknowledged, want %d with %d", c.AckFloor.Stream, c.NumAckPending, floor, pending)
		}
		return nil
	}
}

// jsEvent is a JetStream event as the client reads it.
type jsEvent struct {
	*gateways.Event
	received
}

func (ev jsEvent) seq() uint64 { return ev.JetStream.Sequence }

// nextJS is the next event of s, checked for what every JetStream event carries.
func nextJS(t *testing.T, s *testenv.Stream) jsEvent {
	t.Helper()
	ev := s.Next(t, 10*time.Second)
	r := testenv.DecodeJSON[received](t, ev)
	j := r.JetStream
	if j == nil || j.Stream != "ORDERS" || j.Sequence == 0 || j.NumDelivered == 0 {
		t.Fatalf("event %s: jetStream block %+v", ev.GetPayload(), j)
	}
	md := ev.GetMetadata()
	if want := "ORDERS/" + strconv.FormatUint(j.Sequence, 10); ev.GetId() != want {
		t.Errorf("event id %q, want %q", ev.GetId(), want)
	}
	if md[metaStream] != "ORDERS" || md[metaSequence] != strconv.FormatUint(j.Sequence, 10) || md[metaNumDelivered] != strconv.FormatUint(j.NumDelivered, 10) {
		t.Errorf("event metadata %v, payload's jetStream %+v", md, j)
	}
	return jsEvent{ev, r}
}

// expectJS reads events until it has every stream sequence in [from, to] and returns them
// by sequence; a sequence outside, or one that comes twice, fails the test.
func expectJS(t *testing.T, s *testenv.Stream, prefix string, from, to uint64) map[uint64]jsEvent {
	t.Helper()
	got := map[uint64]jsEvent{}
	for uint64(len(got)) < to-from+1 {
		ev := nextJS(t, s)
		seq := ev.seq()
		if seq < from || seq > to {
			t.Fatalf("stream sequence %d (delivery %d), want %d-%d only", seq, ev.JetStream.NumDelivered, from, to)
		}
		if _, dup := got[seq]; dup {
			t.Fatalf("stream sequence %d twice", seq)
		}
		if want := prefix + strconv.FormatUint(seq-1, 10); string(ev.bytesBody(t)) != want {
			t.Fatalf("stream sequence %d has body %q, want %q", seq, ev.bytesBody(t), want)
		}
		got[seq] = ev
	}
	return got
}

// seqs are the events' seqs (of the call, for acks).
func seqs(evs ...jsEvent) []uint64 {
	out := make([]uint64, len(evs))
	for i, ev := range evs {
		out[i] = ev.GetSeq()
	}
	return out
}

// A v0.10 client (StartEventSource): the stream is read from its start, in order, and
// each message is acknowledged once its event is on the stream.
func TestJetStreamDeliversTheStream(t *testing.T) {
	e := startJetStream(t)
	e.publish(t, "order-", 0, 100)
	gw := testenv.StartGateway(t, newGateway())
	s := events(t, gw, e.source("v010", ""))
	for i := range 100 {
		ev := nextJS(t, s)
		if ev.seq() != uint64(i+1) || ev.JetStream.NumDelivered != 1 || ev.Subject != "orders.created" || string(ev.bytesBody(t)) != "order-"+strconv.Itoa(i) {
			t.Fatalf("event %d: subject %q body %q jetStream %+v", i, ev.Subject, ev.bytesBody(t), ev.JetStream)
		}
	}
	e.publish(t, "order-", 100, 110)
	expectJS(t, s, "order-", 101, 110)
	e.waitConsumer(t, "v010", acked(110, 0))
}

// Acknowledged delivery: a message is acknowledged only once the client acknowledged its
// event delivered or dropped (in any order); a retry has it redelivered, with the same id.
func TestJetStreamAcksOnlyWhatTheClientAcked(t *testing.T) {
	e := startJetStream(t)
	e.publish(t, "order-", 0, 5)
	gw := testenv.StartGateway(t, newGateway())
	s := testenv.OpenAckedStream(t, gw.Client, &gateways.EventSource{Name: "test", Data: e.source("acked", "")}, 10)
	evs := expectJS(t, s.Stream, "order-", 1, 5)

	// Acks of the gateway's connection reach the server in order: once the client's ack
	// of 1 shows, an ack sent earlier (at hand-off) would show too.
	s.Ack(t, delivered, seqs(evs[1])...)
	e.waitConsumer(t, "acked", acked(1, 4))
	s.Ack(t, delivered, seqs(evs[3], evs[2])...)
	e.waitConsumer(t, "acked", acked(3, 2))

	s.Ack(t, retry, seqs(evs[4])...)
	again := nextJS(t, s.Stream)
	if again.seq() != 4 || again.JetStream.NumDelivered != 2 || again.GetId() != evs[4].GetId() {
		t.Fatalf("after a retry of 4: stream sequence %d, delivery %d, id %q", again.seq(), again.JetStream.NumDelivered, again.GetId())
	}
	s.Ack(t, dropped, seqs(evs[5])...)
	e.waitConsumer(t, "acked", acked(3, 1))
	s.Ack(t, delivered, seqs(again)...)
	e.waitConsumer(t, "acked", acked(5, 0))
	if ev := s.Queued(); ev != nil {
		t.Fatalf("an event more: %s", ev.GetPayload())
	}
}

// An event the client holds longer than ackWait is not redelivered meanwhile: the gateway
// keeps it alive with progress acks.
func TestJetStreamHeldEventsDoNotExpire(t *testing.T) {
	e := startJetStream(t)
	e.publish(t, "order-", 0, 1)
	gw := testenv.StartGateway(t, newGateway())
	s := testenv.OpenAckedStream(t, gw.Client, &gateways.EventSource{Name: "test", Data: e.source("held", ", ackWait: 1s")}, 10)
	ev := nextJS(t, s.Stream)
	held := 3 * time.Second // the behaviour under test is this wait: three times ackWait
	if _, err := s.TryNext(held); !errors.Is(err, testenv.ErrNoEvent) {
		t.Fatalf("while the event was held (%s, ackWait 1s): %v", held, err)
	}
	e.waitConsumer(t, "held", func(c *jetstream.ConsumerInfo) error {
		if c.NumRedelivered != 0 || c.NumAckPending != 1 {
			t.Fatalf("while held: %d redelivered, %d unacknowledged", c.NumRedelivered, c.NumAckPending)
		}
		return nil
	})
	s.Ack(t, delivered, ev.GetSeq())
	e.waitConsumer(t, "held", acked(1, 0))
}

// A call that ends with events unacknowledged (their fate: lost) gives them back: the
// next call gets them at once, long before ackWait.
func TestJetStreamLostEventsComeBackOnTheNextCall(t *testing.T) {
	e := startJetStream(t)
	e.publish(t, "order-", 0, 20)
	gw := testenv.StartGateway(t, newGateway())
	es := &gateways.EventSource{Name: "test", Data: e.source("lost", ", ackWait: 1h")}
	first := testenv.OpenAckedStream(t, gw.Client, es, 8)
	evs := expectJS(t, first.Stream, "order-", 1, 8)
	first.Ack(t, delivered, seqs(evs[1], evs[2], evs[3])...)
	// Unacknowledged: the 5 in flight and the 12 the gateway pulled ahead (pullBatch).
	e.waitConsumer(t, "lost", acked(3, 17))
	first.Close()

	second := testenv.OpenAckedStream(t, gw.Client, es, 100)
	evs = expectJS(t, second.Stream, "order-", 4, 20)
	for seq := uint64(4); seq <= 8; seq++ {
		if n := evs[seq].JetStream.NumDelivered; n != 2 {
			t.Errorf("stream sequence %d: delivery %d, want 2 (it was in flight on the first call)", seq, n)
		}
	}
	var all []jsEvent
	for _, ev := range evs {
		all = append(all, ev)
	}
	second.Ack(t, delivered, seqs(all...)...)
	e.waitConsumer(t, "lost", acked(20, 0))
}

// The durable consumer outlives the gateway: a new gateway server resumes after what was
// acknowledged, with what was in flight and what was published meanwhile, nothing lost
// and nothing acknowledged delivered again.
func TestJetStreamResumesAfterGatewayRestart(t *testing.T) {
	e := startJetStream(t)
	e.publish(t, "order-", 0, 50)
	data := e.source("durable", "")
	first := testenv.StartGateway(t, newGateway())
	s := testenv.OpenAckedStream(t, first.Client, &gateways.EventSource{Name: "test", Data: data}, 30)
	evs := expectJS(t, s.Stream, "order-", 1, 30)
	var done []jsEvent
	for seq := uint64(1); seq <= 20; seq++ {
		done = append(done, evs[seq])
	}
	s.Ack(t, delivered, seqs(done...)...)
	e.waitConsumer(t, "durable", acked(20, 30)) // 10 in flight, 20 pulled ahead
	if err := first.Stop(); err != nil {
		t.Fatal(err)
	}
	e.publish(t, "order-", 50, 80)

	second := testenv.StartGateway(t, newGateway())
	s = testenv.OpenAckedStream(t, second.Client, &gateways.EventSource{Name: "test", Data: data}, 100)
	evs = expectJS(t, s.Stream, "order-", 21, 80)
	var rest []jsEvent
	for _, ev := range evs {
		rest = append(rest, ev)
	}
	s.Ack(t, delivered, seqs(rest...)...)
	e.waitConsumer(t, "durable", acked(80, 0))
}

// A connection lost with events in flight: their acks cannot be sent any more, and the
// server redelivers them after ackWait on the new connection. Every message ends up
// acknowledged; those in flight come twice (at least once).
func TestJetStreamConnectionLostInFlight(t *testing.T) {
	e := startJetStream(t)
	e.publish(t, "order-", 0, 10)
	proxy := testenv.StartProxy(t, e.ns.Addr().String())
	data := strings.Replace(e.source("cut", ", ackWait: 1s"), e.ns.ClientURL(), "nats://"+proxy.Addr, 1)
	gw := testenv.StartGateway(t, newGateway())
	s := testenv.OpenAckedStream(t, gw.Client, &gateways.EventSource{Name: "test", Data: data}, 10)
	evs := expectJS(t, s.Stream, "order-", 1, 10)
	s.Ack(t, delivered, seqs(evs[1], evs[2])...)
	e.waitConsumer(t, "cut", acked(2, 8))

	proxy.Cut()
	var late []jsEvent
	for seq := uint64(3); seq <= 10; seq++ {
		late = append(late, evs[seq])
	}
	s.Ack(t, delivered, seqs(late...)...) // on the lost connection: not sent
	proxy.Restore()

	again := expectJS(t, s.Stream, "order-", 3, 10)
	for seq, ev := range again {
		if ev.JetStream.NumDelivered < 2 {
			t.Errorf("stream sequence %d: delivery %d, want a redelivery", seq, ev.JetStream.NumDelivered)
		}
	}
	var all []jsEvent
	for _, ev := range again {
		all = append(all, ev)
	}
	s.Ack(t, delivered, seqs(all...)...)
	e.waitConsumer(t, "cut", acked(10, 0))
}

// A JetStream server restart (same storage): what was not acknowledged before, and what is
// published after, arrives.
func TestJetStreamBrokerRestart(t *testing.T) {
	e := startJetStream(t)
	port := e.ns.Addr().(*net.TCPAddr).Port
	e.publish(t, "order-", 0, 10)
	gw := testenv.StartGateway(t, newGateway())
	s := testenv.OpenAckedStream(t, gw.Client, &gateways.EventSource{Name: "test", Data: e.source("restart", ", ackWait: 1s")}, 100)
	evs := expectJS(t, s.Stream, "order-", 1, 10)
	var firstFive []jsEvent
	for seq := uint64(1); seq <= 5; seq++ {
		firstFive = append(firstFive, evs[seq])
	}
	s.Ack(t, delivered, seqs(firstFive...)...)
	e.waitConsumer(t, "restart", acked(5, 5))

	e.ns.Shutdown()
	e.ns.WaitForShutdown()
	e.ns = natsenv.StartJetStream(t, port, e.storeDir)
	e.connect(t)
	e.publish(t, "order-", 10, 20)

	got := expectJS(t, s.Stream, "order-", 6, 20)
	var all []jsEvent
	for _, ev := range got {
		all = append(all, ev)
	}
	s.Ack(t, delivered, seqs(all...)...)
	e.waitConsumer(t, "restart", acked(20, 0))
}

// A stream that does not exist: the source says which, and consumes once it is created.
func TestJetStreamStreamMissing(t *testing.T) {
	ns := natsenv.StartJetStream(t, -1, t.TempDir())
	data := fmt.Sprintf("url: %s\nsubject: late.*\n%s\njetStream: {stream: LATE, consumer: c}", ns.ClientURL(), fastBackoff)
	src, err := newGateway().Parse("missing", data)
	if err != nil {
		t.Fatal(err)
	}
	nc := connect(t, ns.ClientURL())
	_, err = src.(*source).consumer(t.Context(), nc)
	if want := `nats.jetStream.stream: the server has no stream "LATE": create it first`; err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("consumer on a missing stream: %v, want %q", err, want)
	}

	gw := testenv.StartGateway(t, newGateway())
	s := events(t, gw, data)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(t.Context(), jetstream.StreamConfig{Name: "LATE", Subjects: []string{"late.>"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(t.Context(), "late.one", []byte("m0")); err != nil {
		t.Fatal(err)
	}
	if r := next(t, s, 10*time.Second); r.Subject != "late.one" || r.JetStream == nil || r.JetStream.Stream != "LATE" {
		t.Fatalf("event %+v", r)
	}
}

// A consumer whose deliver policy the source would change: the server's refusal is given
// with the consumer and the stream.
func TestJetStreamConsumerConflict(t *testing.T) {
	e := startJetStream(t)
	if _, err := e.js.CreateOrUpdateConsumer(t.Context(), "ORDERS", jetstream.ConsumerConfig{Durable: "taken", DeliverPolicy: jetstream.DeliverNewPolicy, AckPolicy: jetstream.AckExplicitPolicy}); err != nil {
		t.Fatal(err)
	}
	src, err := newGateway().Parse("conflict", e.source("taken", ", deliverPolicy: all"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	_, err = src.(*source).consumer(ctx, connect(t, e.ns.ClientURL()))
	if want := `nats.jetStream.consumer: create or update durable consumer "taken" on stream "ORDERS"`; err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("consumer with another deliver policy: %v, want %q", err, want)
	}
	t.Log(err)
}

// The complaint, on JetStream: the real gateway-client is killed (SIGKILL) in the
// middle of a stream and started again. Every message the stream acknowledged reached the
// sensor; duplicates are allowed (counted).
func TestJetStreamEndToEndClientKilled(t *testing.T) {
	const n = 300
	e := startJetStream(t)
	e.publish(t, "order-", 0, n)
	gw := testenv.StartGateway(t, newGateway())
	sensor := testenv.StartSensor(t, sensorsink.Endpoints{})
	cfg := testenv.ClientConfig{
		GatewayType: gatewayType,
		Servers:     []string{gw.Addr},
		Sensors:     []string{sensor.URL},
		Sources:     map[string]string{"orders": e.source("e2e", "")},
	}
	client := testenv.StartClient(t, cfg)
	testenv.Eventually(t, 30*time.Second, 5*time.Millisecond, func() error {
		if got := len(sensor.Received()); got < n/10 {
			return fmt.Errorf("%d events at the sensor", got)
		}
		return nil
	})
	client.Kill()
	killedAt := len(sensor.Received())

	testenv.StartClient(t, cfg)
	e.waitConsumer(t, "e2e", acked(n, 0))
	got := map[uint64]int{}
	for _, ev := range sensor.Received() {
		var r received
		if err := json.Unmarshal(ev.Data(), &r); err != nil || r.JetStream == nil {
			t.Fatalf("event data %s: %v", ev.Data(), err)
		}
		if ext := ev.Extensions()["natssequence"]; fmt.Sprint(ext) != strconv.FormatUint(r.JetStream.Sequence, 10) {
			t.Errorf("natssequence extension %v, data's sequence %d", ext, r.JetStream.Sequence)
		}
		got[r.JetStream.Sequence]++
	}
	duplicates := 0
	for seq := uint64(1); seq <= n; seq++ {
		switch c := got[seq]; {
		case c == 0:
			t.Errorf("stream sequence %d acknowledged, never at the sensor", seq)
		case c > 1:
			duplicates += c - 1
		}
	}
	t.Logf("%d messages; client killed after %d had reached the sensor; %d duplicates", n, killedAt, duplicates)
}

// A gateway server killed (SIGKILL) with events in flight cannot give them back: the server
// redelivers them after ackWait to the next gateway on the durable consumer, which resumes
// after what was acknowledged: nothing lost.
func TestJetStreamGatewayKilled(t *testing.T) {
	e := startJetStream(t)
	e.publish(t, "order-", 0, 20)
	es := &gateways.EventSource{Name: "test", Data: e.source("killed", ", ackWait: 1s")}
	gw, proc := testenv.StartGatewayProcess(t, testExecutable(t), nil, runAsGateway+"=1")
	s := testenv.OpenAckedStream(t, gw.Client, es, 10)
	evs := expectJS(t, s.Stream, "order-", 1, 10)
	s.Ack(t, delivered, seqs(evs[1], evs[2], evs[3], evs[4], evs[5])...)
	e.waitConsumer(t, "killed", acked(5, 15)) // 5 in flight, 10 pulled ahead
	proc.Kill()

	gw, _ = testenv.StartGatewayProcess(t, testExecutable(t), nil, runAsGateway+"=1")
	s = testenv.OpenAckedStream(t, gw.Client, es, 100)
	evs = expectJS(t, s.Stream, "order-", 6, 20)
	var all []jsEvent
	for _, ev := range evs {
		if ev.JetStream.NumDelivered != 2 {
			t.Errorf("stream sequence %d: delivery %d, want 2 (the killed gateway had it)", ev.seq(), ev.JetStream.NumDelivered)
		}
		all = append(all, ev)
	}
	s.Ack(t, delivered, seqs(all...)...)
	e.waitConsumer(t, "killed", acked(20, 0))
}
