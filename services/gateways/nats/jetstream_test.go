package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventgate/eventgate/pkg/sensorsink"
	"github.com/eventgate/eventgate/pkg/server"
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

// sourceOn is the config of a JetStream source of subject on ORDERS through consumer,
// with extra fields of the jetStream block (", ackWait: 1s").
func (e *jsEnv) sourceOn(subject, consumer, extra string) string {
	return fmt.Sprintf("url: %s\nsubject: %s\n%s\njetStream: {stream: ORDERS, consumer: %s%s}", e.ns.ClientURL(), subject, fastBackoff, consumer, extra)
}

// consumerConfig is the config of consumer on ORDERS as the server has it.
func (e *jsEnv) consumerConfig(t *testing.T, consumer string) jetstream.ConsumerConfig {
	t.Helper()
	c, err := e.js.Consumer(t.Context(), "ORDERS", consumer)
	if err != nil {
		t.Fatal(err)
	}
	return c.CachedInfo().Config
}

// An existing consumer is updated to the source's config only when the source agrees with
// it on what it delivers (filter subject, deliver policy): other sources may share it, and
// would lose their messages to this one. How it delivers (ackWait, maxAckPending) follows
// the source. What the server refuses to change is refused with the consumer and stream.
func TestJetStreamExistingConsumer(t *testing.T) {
	e := startJetStream(t)
	explicit := jetstream.AckExplicitPolicy
	conflict := `nats.jetStream.consumer: durable consumer "%s" on stream "ORDERS" is in use with another config: `
	tests := []struct {
		name     string
		existing *jetstream.ConsumerConfig // nil: none
		subject  string
		extra    string
		wantErr  string // formatted with the consumer's name
		check    func(jetstream.ConsumerConfig) error
	}{
		{
			name: "missing: created", subject: "orders.a",
			check: filtered("orders.a"),
		},
		{
			name:     "same filter: used",
			existing: &jetstream.ConsumerConfig{FilterSubject: "orders.a", AckPolicy: explicit}, subject: "orders.a",
			check: filtered("orders.a"),
		},
		{
			name:     "another filter subject",
			existing: &jetstream.ConsumerConfig{FilterSubject: "orders.a", AckPolicy: explicit}, subject: "orders.b",
			wantErr: conflict + `its filter subject is "orders.a", this source's subject is "orders.b"; sources that share a consumer share its messages, so it is left as it is`,
			check:   filtered("orders.a"),
		},
		{
			name:     "a wider filter subject",
			existing: &jetstream.ConsumerConfig{FilterSubject: "orders.>", AckPolicy: explicit}, subject: "orders.a",
			wantErr: conflict + `its filter subject is "orders.>", this source's subject is "orders.a"`,
			check:   filtered("orders.>"),
		},
		{
			name:     "no filter subject",
			existing: &jetstream.ConsumerConfig{AckPolicy: explicit}, subject: "orders.a",
			wantErr: conflict + `its filter subject is none (every subject of the stream), this source's subject is "orders.a"`,
			check:   filtered(),
		},
		{
			name:     "several filter subjects",
			existing: &jetstream.ConsumerConfig{FilterSubjects: []string{"orders.a", "orders.b"}, AckPolicy: explicit}, subject: "orders.a",
			wantErr: conflict + `its filter subject is "orders.a", "orders.b", this source's subject is "orders.a"`,
			check:   filtered("orders.a", "orders.b"),
		},
		{
			name:     "the same filter subject in filterSubjects: used",
			existing: &jetstream.ConsumerConfig{FilterSubjects: []string{"orders.a"}, AckPolicy: explicit}, subject: "orders.a",
			check: filtered("orders.a"),
		},
		{
			name:     "another deliver policy",
			existing: &jetstream.ConsumerConfig{FilterSubject: "orders.a", DeliverPolicy: jetstream.DeliverNewPolicy, AckPolicy: explicit}, subject: "orders.a",
			extra:   ", deliverPolicy: all",
			wantErr: conflict + `its deliver policy is new, this source's deliverPolicy is all (a consumer's deliver policy cannot be changed)`,
		},
		{
			name:     "filter and deliver policy",
			existing: &jetstream.ConsumerConfig{DeliverPolicy: jetstream.DeliverLastPolicy, AckPolicy: explicit}, subject: "orders.a",
			extra:   ", deliverPolicy: new",
			wantErr: conflict + `its filter subject is none (every subject of the stream), this source's subject is "orders.a"; its deliver policy is last, this source's deliverPolicy is new`,
		},
		{
			name:     "the same deliver policy: used",
			existing: &jetstream.ConsumerConfig{FilterSubject: "orders.a", DeliverPolicy: jetstream.DeliverNewPolicy, AckPolicy: explicit}, subject: "orders.a",
			extra: ", deliverPolicy: new",
			check: filtered("orders.a"),
		},
		{
			name:     "another ackWait and maxAckPending: updated",
			existing: &jetstream.ConsumerConfig{FilterSubject: "orders.a", AckPolicy: explicit, AckWait: 5 * time.Second, MaxAckPending: 10}, subject: "orders.a",
			extra: ", ackWait: 7s, maxAckPending: 20",
			check: func(c jetstream.ConsumerConfig) error {
				if c.AckWait != 7*time.Second || c.MaxAckPending != 20 || c.FilterSubject != "orders.a" {
					return fmt.Errorf("ackWait %s, maxAckPending %d, filter %q; want 7s, 20, orders.a", c.AckWait, c.MaxAckPending, c.FilterSubject)
				}
				return nil
			},
		},
		{
			name:     "a push consumer",
			existing: &jetstream.ConsumerConfig{FilterSubject: "orders.a", AckPolicy: explicit, DeliverSubject: "push.here"}, subject: "orders.a",
			wantErr: `nats.jetStream.consumer: durable consumer "%s" on stream "ORDERS" is a push consumer`,
		},
		{
			name:     "another ack policy: the server refuses",
			existing: &jetstream.ConsumerConfig{FilterSubject: "orders.a", AckPolicy: jetstream.AckAllPolicy}, subject: "orders.a",
			wantErr: `nats.jetStream.consumer: create or update durable consumer "%s" on stream "ORDERS" (filter subject "orders.a")`,
		},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			name := "existing" + strconv.Itoa(i)
			if tc.existing != nil {
				cfg := *tc.existing
				cfg.Durable = name
				if _, err := e.js.CreateConsumer(t.Context(), "ORDERS", cfg); err != nil {
					t.Fatal(err)
				}
			}
			src, err := newGateway().Parse("existing", e.sourceOn(tc.subject, name, tc.extra))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			_, err = src.(*source).consumer(ctx, connect(t, e.ns.ClientURL()))
			switch want := fmt.Sprintf(tc.wantErr, name); {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("consumer: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), want)):
				t.Fatalf("consumer: %v\nwant an error containing %s", err, want)
			}
			if tc.check != nil {
				if err := tc.check(e.consumerConfig(t, name)); err != nil {
					t.Error(err)
				}
			}
		})
	}
}

// filtered is a check that a consumer's filter is filter (none when empty).
func filtered(filter ...string) func(jetstream.ConsumerConfig) error {
	return func(c jetstream.ConsumerConfig) error {
		if got := filterSubjects(c); !slices.Equal(got, filter) {
			return fmt.Errorf("consumer filter %q, want %q", got, filter)
		}
		return nil
	}
}

// sourceErrors are the errors that the gateway logged for the event source named source.
func sourceErrors(t testing.TB, logs *testenv.SyncBuffer, source string) []string {
	t.Helper()
	var out []string
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		if line == "" {
			continue
		}
		var r struct {
			EventSource string `json:"eventSource"`
			Error       string `json:"error"`
		}
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if r.EventSource == source && r.Error != "" {
			out = append(out, r.Error)
		}
	}
	return out
}

// waitSourceError waits until the gateway logged an error containing want for source.
func waitSourceError(t testing.TB, logs *testenv.SyncBuffer, source, want string) {
	t.Helper()
	testenv.Eventually(t, 10*time.Second, 10*time.Millisecond, func() error {
		for _, err := range sourceErrors(t, logs, source) {
			if strings.Contains(err, want) {
				return nil
			}
		}
		return fmt.Errorf("source %s logged no error containing %q", source, want)
	})
}

// Two sources that name one consumer with different subjects: the second is refused, and
// does not take the consumer over (which gave it the first one's messages as its own, and
// the first one none of them). A third source that agrees with the first shares the
// consumer's messages with it, each message to one of them.
func TestJetStreamSharedConsumer(t *testing.T) {
	e := startJetStream(t)
	logs := &testenv.SyncBuffer{}
	gw := testenv.StartGateway(t, newGateway(), server.WithLogger(slog.New(slog.NewJSONHandler(logs, nil))))
	open := func(name, subject string) *testenv.Stream {
		return testenv.OpenBufferedStream(t, gw.Client, &gateways.EventSource{Name: name, Data: e.sourceOn(subject, "shared", "")}, 1024)
	}
	a := open("a", "orders.a")
	e.waitConsumer(t, "shared", func(c *jetstream.ConsumerInfo) error { return filtered("orders.a")(c.Config) })
	b := open("b", "orders.b")
	c := open("c", "orders.a")
	waitSourceError(t, logs, "b", `durable consumer "shared" on stream "ORDERS" is in use with another config: its filter subject is "orders.a", this source's subject is "orders.b"`)
	e.waitConsumer(t, "shared", func(info *jetstream.ConsumerInfo) error {
		if info.NumWaiting < 2 { // a's and c's pull requests
			return fmt.Errorf("%d pull requests waiting, want a's and c's", info.NumWaiting)
		}
		return nil
	})

	for i := range 10 {
		for _, subject := range []string{"orders.a", "orders.b"} {
			if _, err := e.js.Publish(t.Context(), subject, []byte(subject+"-"+strconv.Itoa(i))); err != nil {
				t.Fatal(err)
			}
		}
	}
	// orders.a's are the odd sequences 1-19: every one of them once, to a or c.
	got := map[uint64]string{}
	deadline := time.Now().Add(10 * time.Second)
	for len(got) < 10 && time.Now().Before(deadline) {
		for name, s := range map[string]*testenv.Stream{"a": a, "c": c} {
			ev, err := s.TryNext(10 * time.Millisecond)
			if err != nil {
				continue
			}
			r := testenv.DecodeJSON[received](t, ev)
			seq := r.JetStream.Sequence
			if r.Subject != "orders.a" || seq%2 != 1 {
				t.Fatalf("source %s got %s (stream sequence %d)", name, r.Subject, seq)
			}
			if prev, dup := got[seq]; dup {
				t.Fatalf("stream sequence %d to %s and to %s", seq, prev, name)
			}
			got[seq] = name
		}
	}
	if len(got) != 10 {
		t.Fatalf("a and c got %d of orders.a's 10 messages: %v", len(got), got)
	}
	e.waitConsumer(t, "shared", acked(19, 0))
	if ev := b.Queued(); ev != nil {
		t.Errorf("source b got an event: %s", ev.GetPayload())
	}
	if err := filtered("orders.a")(e.consumerConfig(t, "shared")); err != nil {
		t.Error(err)
	}
}

// Sources of one gateway that start together on a new consumer, with two subjects: the
// consumer gets the subject of one of them, every source with that subject uses it and
// every other is refused, whatever the order in which they got to the server.
func TestJetStreamSharedConsumerSourcesStartTogether(t *testing.T) {
	e := startJetStream(t)
	gw := newGateway()
	const n = 16
	errs := make([]error, n)
	subjects := make([]string, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		subjects[i] = []string{"orders.a", "orders.b"}[i%2]
		src, err := gw.Parse("s"+strconv.Itoa(i), e.sourceOn(subjects[i], "together", ""))
		if err != nil {
			t.Fatal(err)
		}
		nc := connect(t, e.ns.ClientURL())
		wg.Go(func() {
			<-start
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			_, errs[i] = src.(*source).consumer(ctx, nc)
		})
	}
	close(start)
	wg.Wait()
	filter := filterSubjects(e.consumerConfig(t, "together"))
	if len(filter) != 1 {
		t.Fatalf("consumer filter %q", filter)
	}
	for i, err := range errs {
		switch {
		case subjects[i] == filter[0] && err != nil:
			t.Errorf("source %d (%s, the consumer's subject): %v", i, subjects[i], err)
		case subjects[i] != filter[0] && (err == nil || !strings.Contains(err.Error(), "is in use with another config")):
			t.Errorf("source %d (%s, the consumer's is %s): %v, want it refused", i, subjects[i], filter[0], err)
		}
	}
}

// Another client changes the filter subject of the consumer a source is reading through:
// the messages it now gets are not the source's, and are given back rather than sent as
// its events; the source then refuses the consumer as it is, and a source of the new
// subject gets them.
func TestJetStreamFilterChangedUnderTheSource(t *testing.T) {
	e := startJetStream(t)
	logs := &testenv.SyncBuffer{}
	gw := testenv.StartGateway(t, newGateway(), server.WithLogger(slog.New(slog.NewJSONHandler(logs, nil))))
	s := testenv.OpenBufferedStream(t, gw.Client, &gateways.EventSource{Name: "a", Data: e.sourceOn("orders.a", "changed", "")}, 1024)
	if _, err := e.js.Publish(t.Context(), "orders.a", []byte("mine")); err != nil {
		t.Fatal(err)
	}
	if r := next(t, s, 10*time.Second); r.Subject != "orders.a" {
		t.Fatalf("event on %s", r.Subject)
	}
	e.waitConsumer(t, "changed", acked(1, 0))

	cfg := e.consumerConfig(t, "changed")
	cfg.FilterSubject = "orders.b"
	if _, err := e.js.UpdateConsumer(t.Context(), "ORDERS", cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := e.js.Publish(t.Context(), "orders.b", []byte("not mine")); err != nil {
		t.Fatal(err)
	}
	waitSourceError(t, logs, "a", `durable consumer "changed" on stream "ORDERS" delivered a message on "orders.b", outside this source's subject "orders.a"`)
	waitSourceError(t, logs, "a", `its filter subject is "orders.b", this source's subject is "orders.a"`)
	if ev := s.Queued(); ev != nil {
		t.Errorf("source a got an event: %s", ev.GetPayload())
	}
	if c := e.consumerConfig(t, "changed"); c.AckWait != defaultAckWait {
		t.Fatalf("ackWait %s", c.AckWait)
	}
	// Given back, not acknowledged: a source with the new subject gets it at once, long
	// before ackWait.
	b := testenv.OpenBufferedStream(t, gw.Client, &gateways.EventSource{Name: "b", Data: e.sourceOn("orders.b", "changed", "")}, 1024)
	if r := next(t, b, 10*time.Second); r.Subject != "orders.b" || r.JetStream.Sequence != 2 || r.JetStream.NumDelivered < 2 {
		t.Fatalf("source b got %s, jetStream %+v; want orders.b's message, delivered before", r.Subject, r.JetStream)
	}
}

func TestSubjectMatches(t *testing.T) {
	tests := []struct {
		pattern, subject string
		want             bool
	}{
		{"orders.a", "orders.a", true},
		{"orders.a", "orders.b", false},
		{"orders.a", "orders.a.x", false},
		{"orders.a.x", "orders.a", false},
		{"orders.*", "orders.a", true},
		{"orders.*", "orders", false},
		{"orders.*", "orders.a.x", false},
		{"*.a", "orders.a", true},
		{"orders.>", "orders.a", true},
		{"orders.>", "orders.a.x", true},
		{"orders.>", "orders", false},
		{">", "orders", true},
		{"orders.*.x", "orders.a.x", true},
		{"orders.*.x", "orders.a.y", false},
	}
	for _, tc := range tests {
		if got := subjectMatches(tc.pattern, tc.subject); got != tc.want {
			t.Errorf("subjectMatches(%q, %q) = %v, want %v", tc.pattern, tc.subject, got, tc.want)
		}
	}
}

// The consumer locks: one holder per key, others wait (or give up with their context), and
// a key's lock is dropped once nobody holds or waits for it.
func TestKeyedLocks(t *testing.T) {
	k := newKeyedLocks()
	unlock, err := k.lock(t.Context(), "ORDERS/c")
	if err != nil {
		t.Fatal(err)
	}
	other, err := k.lock(t.Context(), "ORDERS/d")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if _, err := k.lock(ctx, "ORDERS/c"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a second lock of a held key: %v, want it to wait until its context ends", err)
	}
	got := make(chan error, 1)
	go func() {
		again, err := k.lock(t.Context(), "ORDERS/c")
		if err == nil {
			again()
		}
		got <- err
	}()
	unlock()
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	other()
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.locks) != 0 {
		t.Errorf("%d locks left, want none", len(k.locks))
	}
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
