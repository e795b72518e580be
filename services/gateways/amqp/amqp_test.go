package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/eventgate/eventgate/pkg/server"
	"github.com/eventgate/eventgate/pkg/testenv"
	"github.com/eventgate/eventgate/pkg/testenv/amqpenv"
	"github.com/eventgate/eventgate/protos/gateways"
)

// One RabbitMQ node serves every test of the package (it takes seconds to start).
func TestMain(m *testing.M) { os.Exit(amqpenv.Run(m)) }

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

// names gives a test its own exchange and queue on the shared broker.
func names(t testing.TB) (exchange, queue string) {
	n := unsafeName.ReplaceAllString(t.Name(), "-")
	return "ex-" + n, "q-" + n
}

// publish sends the messages with publisher confirms, so that they are on the broker when
// it returns. A new connection each time, so that a restarted broker is simply dialled again.
func publish(t testing.TB, url, exchange, key string, msgs ...amqp.Publishing) {
	t.Helper()
	if err := tryPublish(url, exchange, key, msgs...); err != nil {
		t.Fatal(err)
	}
}

func tryPublish(url, exchange, key string, msgs ...amqp.Publishing) error {
	conn, err := amqp.Dial(url)
	if err != nil {
		return fmt.Errorf("publisher: %w", err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return err
	}
	if err := ch.Confirm(false); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var confirms []*amqp.DeferredConfirmation
	for _, m := range msgs {
		c, err := ch.PublishWithDeferredConfirmWithContext(ctx, exchange, key, false, false, m)
		if err != nil {
			return fmt.Errorf("publish: %w", err)
		}
		confirms = append(confirms, c)
	}
	for _, c := range confirms {
		if ok, err := c.WaitContext(ctx); !ok || err != nil {
			return fmt.Errorf("publish to exchange %q not confirmed (%v)", exchange, err)
		}
	}
	return nil
}

func texts(persistent bool, values ...string) []amqp.Publishing {
	out := make([]amqp.Publishing, len(values))
	for i, v := range values {
		out[i] = amqp.Publishing{Body: []byte(v)}
		if persistent {
			out[i].DeliveryMode = amqp.Persistent
		}
	}
	return out
}

// brokerChannel dials url and opens a channel on the connection; closeConn closes the
// connection, and so the channel.
func brokerChannel(t testing.TB, url string) (ch *amqp.Channel, closeConn func()) {
	t.Helper()
	conn, err := amqp.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	ch, err = conn.Channel()
	if err != nil {
		conn.Close()
		t.Fatal(err)
	}
	return ch, func() { conn.Close() }
}

// declareQueue makes a durable queue bound to a durable exchange before the source
// starts, so that what is published first is kept for it (the source's own declarations
// are the same, and so no-ops).
func declareQueue(t testing.TB, url, exchange, kind, queue, key string) {
	t.Helper()
	declareQueueWith(t, url, exchange, kind, queue, key, nil)
}

// declareQueueWith is declareQueue of a queue with arguments.
func declareQueueWith(t testing.TB, url, exchange, kind, queue, key string, args amqp.Table) {
	t.Helper()
	ch, closeConn := brokerChannel(t, url)
	defer closeConn()
	if err := ch.ExchangeDeclare(exchange, kind, true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare(queue, true, false, false, false, args); err != nil {
		t.Fatal(err)
	}
	if err := ch.QueueBind(queue, key, exchange, false, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if conn, err := amqp.Dial(url); err == nil {
			if ch, err := conn.Channel(); err == nil {
				ch.QueueDelete(queue, false, false, false)
				ch.ExchangeDelete(exchange, false, false)
			}
			conn.Close()
		}
	})
}

// received is the test's view of an event payload, with the body undecoded and the
// timestamp as written.
type received struct {
	payload
	Timestamp string          `json:"timestamp"`
	Body      json.RawMessage `json:"body"`
}

// bytes is the body as sent.
func (r received) bytes(t testing.TB) []byte {
	t.Helper()
	b, err := testenv.BodyBytes(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// text is the body as sent, as a string.
func (r received) text(t testing.TB) string { return string(r.bytes(t)) }

func decode(t testing.TB, payload []byte) received {
	t.Helper()
	var r received
	if err := json.Unmarshal(payload, &r); err != nil {
		t.Fatalf("payload %s: %v", payload, err)
	}
	return r
}

// parseTime reads an RFC 3339 timestamp of a payload.
func parseTime(t testing.TB, s string) time.Time {
	t.Helper()
	at, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatalf("timestamp %q: %v", s, err)
	}
	return at
}

const probe = "probe"

// waitConsuming returns once the source's queue is bound: a message published before
// that is routed nowhere. Probes, which later reads skip, go out until one comes through.
func waitConsuming(t testing.TB, url, exchange, key string, s *testenv.Stream) {
	t.Helper()
	testenv.Eventually(t, 60*time.Second, 0, func() error {
		// The source declares the exchange: until it did, publishing fails.
		if err := tryPublish(url, exchange, key, texts(false, probe)...); err != nil {
			return err
		}
		_, err := s.TryNext(300 * time.Millisecond)
		return err
	})
}

// readUntil reads events up to the message with body end, skipping probes, and returns
// the bodies and events before it.
func readUntil(t testing.TB, s *testenv.Stream, end string) ([]string, []received) {
	t.Helper()
	return testenv.ReadUntil(t, s, 90*time.Second, received.text, probe, end)
}

// readN reads the bodies of the next n events, skipping probes.
func readN(t testing.TB, s *testenv.Stream, n int) []string {
	t.Helper()
	return testenv.ReadN(t, s, 60*time.Second, received.text, probe, n)
}

func TestDeliversExactlyWhatWasPublished(t *testing.T) {
	b := amqpenv.Start(t)
	exchange, _ := names(t)
	gw := testenv.StartGateway(t, gateway{})
	// v0.10 as written: its default queue is server-named and exclusive.
	data := fmt.Sprintf("url: %s\nexchangeName: %s\nexchangeType: topic\nroutingKey: orders.*\nbackoff: {duration: 1000000000, factor: 2}", b.URL, exchange)
	s := testenv.OpenStream(t, gw.Client, &gateways.EventSource{Name: "orders", Data: data})
	waitConsuming(t, b.URL, exchange, "orders.probe", s)

	sent := testenv.Numbered("order", 0, 50)
	publish(t, b.URL, exchange, "orders.created", texts(false, sent[:25]...)...)
	publish(t, b.URL, exchange, "payments.created", texts(false, "not bound: must not arrive")...)
	publish(t, b.URL, exchange, "orders.created", texts(false, append(sent[25:], "end")...)...)
	got, events := readUntil(t, s, "end")
	if strings.Join(got, ",") != strings.Join(sent, ",") {
		t.Fatalf("received %d messages %v,\nwant exactly the %d published, in order", len(got), got, len(sent))
	}
	for i, r := range events {
		if r.Exchange != exchange || r.RoutingKey != "orders.created" || r.DeliveryTag == 0 || r.Redelivered {
			t.Errorf("event %d metadata: %+v", i, r.payload)
		}
	}
}

func TestPayloadCarriesMetadataAndIntactBodies(t *testing.T) {
	binary := make([]byte, 256)
	for i := range binary {
		binary[i] = byte(i) // every byte value, invalid UTF-8 included
	}
	at := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name     string
		jsonBody bool
		body     []byte
		wantBody string // the body field as JSON
	}{
		{name: "binary body", body: binary, wantBody: `"` + base64.StdEncoding.EncodeToString(binary) + `"`},
		{name: "JSON body as bytes by default", body: []byte(`{"id":7}`), wantBody: `"eyJpZCI6N30="`},
		{name: "jsonBody passes JSON through", jsonBody: true, body: []byte(`{"id":7}`), wantBody: `{"id":7}`},
		{name: "jsonBody keeps a non-JSON body as bytes", jsonBody: true, body: []byte("not json"), wantBody: `"bm90IGpzb24="`},
	}
	b := amqpenv.Start(t)
	gw := testenv.StartGateway(t, gateway{})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			exchange, queue := names(t)
			declareQueue(t, b.URL, exchange, "direct", queue, "k")
			publish(t, b.URL, exchange, "k", amqp.Publishing{
				Body: tc.body, ContentType: "application/octet-stream", MessageId: "m-1", CorrelationId: "c-1",
				Timestamp: at, Headers: amqp.Table{"trace": "abc", "n": int32(7), "nested": amqp.Table{"ok": true}},
			})
			data := fmt.Sprintf("url: %s\nexchangeName: %s\nexchangeType: direct\nroutingKey: k\njsonBody: %t\nqueueDeclare: {name: %s, durable: true}", b.URL, exchange, tc.jsonBody, queue)
			s := testenv.OpenStream(t, gw.Client, &gateways.EventSource{Name: "payloads", Data: data})
			ev := s.Next(t, 30*time.Second)
			r := decode(t, ev.GetPayload())
			if string(r.Body) != tc.wantBody {
				t.Errorf("body = %s, want %s", r.Body, tc.wantBody)
			}
			if !bytes.Equal(r.bytes(t), tc.body) {
				t.Errorf("body bytes differ from the message's")
			}
			headers, _ := json.Marshal(r.Headers)
			if r.Exchange != exchange || r.RoutingKey != "k" || r.ContentType != "application/octet-stream" || r.MessageID != "m-1" ||
				r.CorrelationID != "c-1" || !parseTime(t, r.Timestamp).Equal(at) || string(headers) != `{"n":7,"nested":{"ok":true},"trace":"abc"}` {
				t.Errorf("metadata = %+v, headers %s", r.payload, headers)
			}
			if !ev.GetTime().AsTime().Equal(at) {
				t.Errorf("event time %v, want the message's timestamp %v", ev.GetTime().AsTime(), at)
			}
		})
	}
}

// Times valid in AMQP that JSON cannot carry as time.Time encodes them (before year 0 or
// after 9999) are written in a form it can: the message is delivered, and the messages
// after it are not stuck behind it.
func TestTimesBeyondRFC3339AreDelivered(t *testing.T) {
	b := amqpenv.Start(t)
	gw := testenv.StartGateway(t, gateway{})
	exchange, queue := names(t)
	declareQueue(t, b.URL, exchange, "direct", queue, "k")
	future := time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
	past := time.Date(-1, 12, 31, 23, 59, 59, 0, time.UTC)
	publish(t, b.URL, exchange, "k", amqp.Publishing{
		Body: []byte("beyond"), Timestamp: future,
		Headers: amqp.Table{"future": future, "past": past},
	}, amqp.Publishing{Body: []byte("after")})
	data := fmt.Sprintf("url: %s\nexchangeName: %s\nexchangeType: direct\nroutingKey: k\nbackoff: {duration: 10ms, factor: 1}\nqueueDeclare: {name: %s, durable: true}", b.URL, exchange, queue)
	s := testenv.OpenStream(t, gw.Client, &gateways.EventSource{Name: "beyond", Data: data})

	ev := s.Next(t, 10*time.Second)
	r := decode(t, ev.GetPayload())
	headers, _ := json.Marshal(r.Headers)
	const wantHeaders = `{"future":"+10000-01-01T00:00:00Z","past":"-0001-12-31T23:59:59Z"}`
	if r.text(t) != "beyond" || r.Timestamp != "+10000-01-01T00:00:00Z" || string(headers) != wantHeaders {
		t.Errorf("got %q, timestamp %q, headers %s; want %q, %q, %s", r.text(t), r.Timestamp, headers, "beyond", "+10000-01-01T00:00:00Z", wantHeaders)
	}
	// A CloudEvent's time is RFC 3339: the event has the time it was received at.
	if at := ev.GetTime().AsTime(); time.Since(at).Abs() > time.Minute {
		t.Errorf("event time %v, want about now", at)
	}
	if got := decode(t, s.Next(t, 10*time.Second).GetPayload()).text(t); got != "after" {
		t.Errorf("next event %q, want %q", got, "after")
	}
}

// NaN and infinite floats are valid AMQP header values, which RabbitMQ refuses to route but
// other brokers may deliver: JSON has no number for them, so they are strings.
func TestHeaderFloatsJSONHasNoNumberFor(t *testing.T) {
	h := headers(amqp.Table{"nan": math.NaN(), "minusInf": math.Inf(-1), "inf32": float32(math.Inf(1)), "f": 1.5, "in": []any{math.NaN()}})
	got, err := json.Marshal(h)
	if want := `{"f":1.5,"in":["NaN"],"inf32":"+Inf","minusInf":"-Inf","nan":"NaN"}`; err != nil || string(got) != want {
		t.Errorf("headers = %s (%v), want %s", got, err, want)
	}
}

// A session that fails as soon as it consumes (here every hand-off fails) did not show that
// the source works: the waits between its attempts grow per the backoff, where starting over
// at each attempt would reconnect in a hot loop.
func TestSessionFailingAtOnceBacksOff(t *testing.T) {
	b := amqpenv.Start(t)
	exchange, queue := names(t)
	declareQueue(t, b.URL, exchange, "direct", queue, "k")
	publish(t, b.URL, exchange, "k", texts(true, "msg")...)
	src, err := gateway{}.Parse("failing", fmt.Sprintf("url: %s\nexchangeName: %s\nexchangeType: direct\nroutingKey: k\nbackoff: {duration: 20ms, factor: 2}\nqueueDeclare: {name: %s, durable: true}", b.URL, exchange, queue))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var attempts []time.Time
	emit := func(context.Context, server.Event) error {
		mu.Lock()
		defer mu.Unlock()
		attempts = append(attempts, time.Now())
		return errors.New("stream broke before the hand-off")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Start(ctx, emit) }()
	const n = 6
	testenv.Eventually(t, 10*time.Second, 10*time.Millisecond, func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(attempts) < n {
			return fmt.Errorf("%d hand-offs attempted, want %d", len(attempts), n)
		}
		return nil
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Start = %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	// Waits of 20, 40, 80, 160 and 320 ms; 20 ms each when the backoff starts over.
	if gap := attempts[n-1].Sub(attempts[n-2]); gap < 300*time.Millisecond {
		t.Errorf("%v between the last two sessions, want at least 320ms (the 5th wait); attempts at %v", gap, attempts)
	}
}

// The broker goes away for seconds while messages are published before and after; with
// a durable queue, persistent messages and acks after hand-off, nothing is lost.
func TestBrokerRestartMidStream(t *testing.T) {
	b := amqpenv.Start(t)
	exchange, queue := names(t)
	declareQueue(t, b.URL, exchange, "fanout", queue, "")
	gw := testenv.StartGateway(t, gateway{})
	data := fmt.Sprintf("url: %s\nexchangeName: %s\nexchangeType: fanout\nbackoff: {duration: 200ms, factor: 1}\nqueueDeclare: {name: %s, durable: true}", b.URL, exchange, queue)
	s := testenv.OpenStream(t, gw.Client, &gateways.EventSource{Name: "events", Data: data})

	before, after := testenv.Numbered("event", 0, 100), testenv.Numbered("event", 100, 100)
	publish(t, b.URL, exchange, "", texts(true, before...)...)
	// Restart while the source is in the middle of the first batch.
	got := readN(t, s, 30)
	b.Restart(t)
	publish(t, b.URL, exchange, "", texts(true, append(after, "end")...)...)
	rest, _ := readUntil(t, s, "end")
	got = append(got, rest...)

	sent := append(before, after...)
	lost, dups := testenv.Losses(sent, got)
	t.Logf("amqp across a broker restart: published %d, received %d, lost %d, duplicates %d", len(sent), len(got), lost, dups)
	if lost != 0 {
		t.Errorf("%d messages lost across the broker restart", lost)
	}
}

// handedOff reports an event delivered at hand-off, as StartEventSource does.
func handedOff(ev server.Event) {
	if ev.OnFate != nil {
		ev.OnFate(server.FateDelivered)
	}
}

// flakyEmit fails the hand-off of one message, as a stream that dies between receive and
// send does, and records what it handed over (delivered at hand-off, as StartEventSource).
type flakyEmit struct {
	mu      sync.Mutex
	failOn  string
	failed  bool
	got     []received
	t       testing.TB
	arrived chan struct{}
}

func (f *flakyEmit) emit(_ context.Context, ev server.Event) error {
	r := decode(f.t, ev.Payload)
	f.mu.Lock()
	defer f.mu.Unlock()
	if string(r.bytes(f.t)) == f.failOn && !f.failed {
		f.failed = true
		return errors.New("stream broke before the hand-off")
	}
	f.got = append(f.got, r)
	handedOff(ev)
	select {
	case f.arrived <- struct{}{}:
	default:
	}
	return nil
}

func (f *flakyEmit) bodies() ([]string, []received) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, r := range f.got {
		out = append(out, string(r.bytes(f.t)))
	}
	return out, append([]received(nil), f.got...)
}

// A message whose hand-off failed is not acknowledged: the broker delivers it again (to
// the reconnected session here; to the next gateway if this one had died).
func TestMessageNotHandedOverIsRedelivered(t *testing.T) {
	b := amqpenv.Start(t)
	exchange, queue := names(t)
	declareQueue(t, b.URL, exchange, "direct", queue, "k")
	sent := testenv.Numbered("msg", 0, 10)
	publish(t, b.URL, exchange, "k", texts(true, sent...)...)

	src, err := gateway{}.Parse("redeliver", fmt.Sprintf("url: %s\nexchangeName: %s\nexchangeType: direct\nroutingKey: k\nbackoff: {duration: 10ms}\nqueueDeclare: {name: %s, durable: true}", b.URL, exchange, queue))
	if err != nil {
		t.Fatal(err)
	}
	f := &flakyEmit{failOn: "msg-004", t: t, arrived: make(chan struct{}, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Start(ctx, f.emit) }()
	testenv.Eventually(t, 30*time.Second, 10*time.Millisecond, func() error {
		if got, _ := f.bodies(); len(got) < len(sent) {
			return fmt.Errorf("%d of %d handed over", len(got), len(sent))
		}
		return nil
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Start = %v", err)
	}
	got, events := f.bodies()
	if lost, dups := testenv.Losses(sent, got); lost != 0 || dups != 0 || len(got) != len(sent) {
		t.Fatalf("handed over %v: %d lost, %d duplicates", got, lost, dups)
	}
	for _, r := range events {
		if string(r.bytes(t)) == "msg-004" && !r.Redelivered {
			t.Errorf("msg-004 came back without the redelivered flag: %+v", r.payload)
		}
	}
}

func TestInvalidConfigsOverGRPC(t *testing.T) {
	gw := testenv.StartGateway(t, gateway{})
	testenv.ExpectInvalid(t, gw.Client, []testenv.InvalidCase{
		{Name: "bad URL", Data: "url: http://host/\nexchangeName: e\nexchangeType: topic", Field: "amqp.url"},
		{Name: "missing exchange", Data: "url: amqp://h/\nexchangeType: topic", Field: "amqp.exchangeName"},
		{Name: "unknown exchange type", Data: "url: amqp://h/\nexchangeName: e\nexchangeType: round-robin", Field: "amqp.exchangeType"},
		{Name: "negative backoff", Data: "url: amqp://h/\nexchangeName: e\nexchangeType: topic\nbackoff: {duration: -10000000000}", Field: "amqp.backoff.duration"},
		{Name: "TLS with a plaintext URL", Data: "url: amqp://h/\nexchangeName: e\nexchangeType: topic\ntls: {}", Field: "amqp.tls", Reason: `amqp.tls: is set but url "amqp://h/" is not a TLS scheme (amqp:// connects without TLS): use amqps://`},
	})
}

func TestEndToEndThroughTheGatewayClient(t *testing.T) {
	b := amqpenv.Start(t)
	exchange, queue := names(t)
	declareQueue(t, b.URL, exchange, "topic", queue, "orders.#")
	sensor := testenv.StartEndToEnd(t, gateway{}, "orders", fmt.Sprintf("url: %s\nexchangeName: %s\nexchangeType: topic\nroutingKey: orders.#\njsonBody: true\nqueueDeclare:\n  name: %s\n  durable: true",
		b.URL, exchange, queue))
	publish(t, b.URL, exchange, "orders.eu.created", texts(true, `{"order":1}`, `{"order":2}`, `{"order":3}`)...)

	got, data := testenv.WaitJSON[received](t, sensor, 3, 60*time.Second)
	for i, ev := range got {
		r := data[i]
		want := fmt.Sprintf(`{"order":%d}`, i+1)
		if ev.Type() != gatewayType || ev.Subject() != "orders" || ev.Source() != "amqp-gateway" || string(r.Body) != want || r.RoutingKey != "orders.eu.created" {
			t.Errorf("event %d: type %q subject %q source %q body %s routing key %q", i, ev.Type(), ev.Subject(), ev.Source(), r.Body, r.RoutingKey)
		}
	}
}

// A gateway that stops (or dies) while a hand-off is blocked, with more messages
// prefetched behind it, acknowledged none of them: the next gateway gets them all.
func TestGatewayStoppingMidHandOffLosesNothing(t *testing.T) {
	b := amqpenv.Start(t)
	exchange, queue := names(t)
	declareQueue(t, b.URL, exchange, "direct", queue, "k")
	sent := testenv.Numbered("msg", 0, 10)
	publish(t, b.URL, exchange, "k", texts(true, sent...)...)
	data := fmt.Sprintf("url: %s\nexchangeName: %s\nexchangeType: direct\nroutingKey: k\nqueueDeclare: {name: %s, durable: true}", b.URL, exchange, queue)

	var got []string
	blocked := make(chan struct{})
	first, err := gateway{}.Parse("first", data)
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- first.Start(ctx, func(ctx context.Context, ev server.Event) error {
			if len(got) == 3 {
				close(blocked) // a client that stopped reading: the hand-off waits
				<-ctx.Done()
				return ctx.Err()
			}
			got = append(got, string(decode(t, ev.Payload).bytes(t)))
			handedOff(ev)
			return nil
		})
	}()
	select {
	case <-blocked:
	case <-time.After(30 * time.Second):
		t.Fatal("the first gateway never got to its fourth message")
	}
	stop()
	if err := <-done; err != nil {
		t.Fatalf("Start = %v", err)
	}

	second, err := gateway{}.Parse("second", data)
	if err != nil {
		t.Fatal(err)
	}
	f := &flakyEmit{t: t, arrived: make(chan struct{}, 1)}
	ctx, stop = context.WithCancel(context.Background())
	go func() { done <- second.Start(ctx, f.emit) }()
	defer func() { stop(); <-done }()
	testenv.Eventually(t, 30*time.Second, 10*time.Millisecond, func() error {
		if rest, _ := f.bodies(); len(got)+len(rest) < len(sent) {
			return fmt.Errorf("%d + %d of %d delivered", len(got), len(rest), len(sent))
		}
		return nil
	})
	rest, events := f.bodies()
	all := append(append([]string(nil), got...), rest...)
	lost, dups := testenv.Losses(sent, all)
	t.Logf("amqp gateway stopped mid hand-off: published %d, delivered %d before and %d after, lost %d, duplicates %d", len(sent), len(got), len(rest), lost, dups)
	if lost != 0 || dups != 0 {
		t.Errorf("delivered %v then %v: %d lost, %d duplicates", got, rest, lost, dups)
	}
	if len(events) > 0 && (rest[0] != "msg-003" || !events[0].Redelivered) {
		t.Errorf("the second gateway began with %q (redelivered %t), want msg-003 redelivered", rest[0], events[0].Redelivered)
	}
}

// A named queue that exists with arguments (a quorum queue, a dead-letter exchange) is
// consumed when queueDeclare.arguments match them, in YAML or as Argo's JSON string.
func TestQueueDeclareArgumentsMatchAnExistingQueue(t *testing.T) {
	b := amqpenv.Start(t)
	gw := testenv.StartGateway(t, gateway{})
	for _, tc := range []struct {
		name, yaml string
		args       amqp.Table
	}{
		{"quorum queue", "{x-queue-type: quorum}", amqp.Table{"x-queue-type": "quorum"}},
		{"dead-letter exchange and ttl", "{x-dead-letter-exchange: dlx, x-message-ttl: 60000}", amqp.Table{"x-dead-letter-exchange": "dlx", "x-message-ttl": int64(60000)}},
		{"Argo's JSON string", `'{"x-dead-letter-exchange": "dlx"}'`, amqp.Table{"x-dead-letter-exchange": "dlx"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			exchange, queue := names(t)
			declareQueueWith(t, b.URL, exchange, "direct", queue, "k", tc.args)
			publish(t, b.URL, exchange, "k", texts(true, "m1")...)
			data := fmt.Sprintf("url: %s\nexchangeName: %s\nexchangeType: direct\nroutingKey: k\nbackoff: {duration: 100ms, factor: 1}\nqueueDeclare: {name: %s, durable: true, arguments: %s}", b.URL, exchange, queue, tc.yaml)
			s := testenv.OpenStream(t, gw.Client, &gateways.EventSource{Name: "args", Data: data})
			if got := readN(t, s, 1); got[0] != "m1" {
				t.Errorf("got %q, want m1", got)
			}
		})
	}
}

// Without the arguments the queue has, the broker refuses the declaration: that is logged as
// the configuration problem it is, naming the queue and with the broker's reason, not as a
// lost connection, and declared again per the backoff, so that once the queue is fixed (here
// deleted by an operator, and so declared by the source) the source consumes.
func TestExistingQueueMismatchIsReportedAndRetried(t *testing.T) {
	b := amqpenv.Start(t)
	for _, tc := range []struct {
		name, arg string
		args      amqp.Table
	}{
		{"quorum queue", "x-queue-type", amqp.Table{"x-queue-type": "quorum"}},
		{"dead-letter exchange", "x-dead-letter-exchange", amqp.Table{"x-dead-letter-exchange": "dlx"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logs, opt := testenv.CaptureLogs(t)
			gw := testenv.StartGateway(t, gateway{}, opt)
			exchange, queue := names(t)
			declareQueueWith(t, b.URL, exchange, "direct", queue, "k", tc.args)
			data := fmt.Sprintf("url: %s\nexchangeName: %s\nexchangeType: direct\nroutingKey: k\nbackoff: {duration: 100ms, factor: 1}\nqueueDeclare: {name: %s, durable: true}", b.URL, exchange, queue)
			s := testenv.OpenStream(t, gw.Client, &gateways.EventSource{Name: "mismatch", Data: data})

			// slog's text handler quotes the error, and the quotes in it.
			want := fmt.Sprintf(`declare queue \"%s\": the broker refuses: PRECONDITION_FAILED - inequivalent arg '%s' for queue '%s'`, queue, tc.arg, queue)
			testenv.WaitLogged(t, logs, want, 2, 10*time.Second)
			testenv.WaitLogged(t, logs, "set queueDeclare to match the existing queue", 2, time.Second)
			testenv.WaitLogged(t, logs, "refused: the upstream does not accept the source's configuration", 2, time.Second)
			if strings.Contains(logs.String(), "connection lost") {
				t.Errorf("the refused declaration is logged as a lost connection:\n%s", logs)
			}

			ch, closeConn := brokerChannel(t, b.URL)
			defer closeConn()
			if _, err := ch.QueueDelete(queue, false, false, false); err != nil {
				t.Fatal(err)
			}
			waitConsuming(t, b.URL, exchange, "k", s)
		})
	}
}
