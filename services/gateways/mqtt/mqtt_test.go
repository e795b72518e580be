package main

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/eventgate/eventgate/pkg/testenv"
	"github.com/eventgate/eventgate/pkg/testenv/mqttenv"
	"github.com/eventgate/eventgate/protos/gateways"
)

// received is a payload as a client decodes it.
type received struct {
	Topic     string          `json:"topic"`
	MessageID uint16          `json:"messageId"`
	QoS       byte            `json:"qos"`
	Retained  bool            `json:"retained"`
	Duplicate bool            `json:"duplicate"`
	Body      json.RawMessage `json:"body"`
}

// text is the body of a payload that carries bytes (base64 in JSON).
func (r received) text(t testing.TB) string {
	t.Helper()
	var b []byte
	if err := json.Unmarshal(r.Body, &b); err != nil {
		t.Fatalf("body %s is not base64 bytes: %v", r.Body, err)
	}
	return string(b)
}

// events starts an event source on gw. Its events are read ahead of the test, so that a
// test checking one event does not hold the source (and the broker) back.
func events(t testing.TB, gw *testenv.Gateway, data string) *testenv.Stream {
	t.Helper()
	return testenv.OpenBufferedStream(t, gw.Client, &gateways.EventSource{Name: "test", Data: data}, 1024)
}

// next is the next event's payload, or a test failure after timeout.
func next(t testing.TB, s *testenv.Stream, timeout time.Duration) received {
	t.Helper()
	return testenv.NextJSON[received](t, s, timeout)
}

func waitSubscribed(t testing.TB, b *mqttenv.Broker, topic string) {
	t.Helper()
	testenv.Eventually(t, 20*time.Second, 5*time.Millisecond, func() error {
		if !b.Subscribed(topic) {
			return fmt.Errorf("no client subscribed to %q", topic)
		}
		return nil
	})
}

// publish sends bodies "<prefix>0" .. "<prefix>n-1".
func publish(t testing.TB, b *mqttenv.Broker, topic, prefix string, n int, qos byte) {
	t.Helper()
	for i := range n {
		if err := b.Publish(topic, []byte(prefix+strconv.Itoa(i)), qos); err != nil {
			t.Fatal(err)
		}
	}
}

// expect reads n events and fails unless they are "<prefix>0" .. "<prefix>n-1", in order.
func expect(t testing.TB, ch *testenv.Stream, topic, prefix string, n int) {
	t.Helper()
	for i := range n {
		r := next(t, ch, 10*time.Second)
		if want := prefix + strconv.Itoa(i); r.Topic != topic || r.text(t) != want {
			t.Fatalf("event %d = topic %q body %s, want topic %q body %q", i, r.Topic, r.Body, topic, want)
		}
	}
}

// ledger checks at-least-once delivery: every message published arrives, in any order
// (the order in which a broker resends a resumed session's messages is the broker's; mochi
// resends those of the same second in no particular order), and one arrives again only
// marked as a duplicate (sent again because its acknowledgement did not reach the broker).
type ledger struct {
	topic      string
	published  map[string]bool
	seen       map[string]bool
	duplicates int
}

func newLedger(topic string) *ledger {
	return &ledger{topic: topic, published: map[string]bool{}, seen: map[string]bool{}}
}

// publish publishes "<prefix>0" .. "<prefix>n-1" and records them.
func (l *ledger) publish(t testing.TB, b *mqttenv.Broker, prefix string, n int) {
	t.Helper()
	publish(t, b, l.topic, prefix, n, 1)
	for i := range n {
		l.published[prefix+strconv.Itoa(i)] = true
	}
}

// receiveAll reads events until every message published so far has arrived.
func (l *ledger) receiveAll(t testing.TB, ch *testenv.Stream) {
	t.Helper()
	for len(l.seen) < len(l.published) {
		r := next(t, ch, 10*time.Second)
		body := r.text(t)
		switch {
		case r.Topic != l.topic || !l.published[body]:
			t.Fatalf("event %+v (body %q) was not published", r, body)
		case l.seen[body] && !r.Duplicate:
			t.Fatalf("%q delivered twice, the second time not marked as a duplicate", body)
		case l.seen[body]:
			l.duplicates++
		}
		l.seen[body] = true
	}
}

func expectNothingQueued(t testing.TB, ch *testenv.Stream) {
	t.Helper()
	if ev := ch.Queued(); ev != nil {
		t.Fatalf("an event beyond those published: %s", ev.GetPayload())
	}
}

const fastBackoff = "backoff: {duration: 20ms, factor: 1}"

func TestMessagesArriveExactlyOnceInOrder(t *testing.T) {
	tests := []struct {
		name, config string
		qos          byte
	}{
		{name: "QoS 0, made-up client ID", config: "qos: 0", qos: 0},
		{name: "QoS 1 by default, persistent session", config: "clientId: 1234", qos: 1},
		{name: "QoS 2", config: "qos: 2\nclientId: q2", qos: 2},
	}
	broker := mqttenv.Start(t)
	gw := testenv.StartGateway(t, &gateway{})
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			filter := "orders/" + strconv.Itoa(i) + "/+"
			topic := "orders/" + strconv.Itoa(i) + "/created"
			ch := events(t, gw, fmt.Sprintf("url: %s\ntopic: %s\n%s\n%s", broker.URL, filter, tc.config, fastBackoff))
			waitSubscribed(t, broker, filter)
			const n = 300
			publish(t, broker, topic, "order-", n, 2)
			for j := range n {
				r := next(t, ch, 10*time.Second)
				if want := "order-" + strconv.Itoa(j); r.Topic != topic || r.text(t) != want || r.QoS != tc.qos || r.Duplicate {
					t.Fatalf("event %d = %+v (body %q), want topic %q body %q QoS %d", j, r, r.text(t), topic, want, tc.qos)
				}
				if (r.MessageID == 0) != (tc.qos == 0) {
					t.Fatalf("event %d: message ID %d at QoS %d", j, r.MessageID, r.QoS)
				}
			}
			expectNothingQueued(t, ch)
		})
	}
}

func TestBodiesAndMetadata(t *testing.T) {
	binary := make([]byte, 256)
	for i := range binary {
		binary[i] = byte(i)
	}
	tests := []struct {
		name     string
		jsonBody bool
		retained bool
		body     []byte
		wantBody string // the payload's body as compact JSON
	}{
		{name: "binary body intact", body: binary, wantBody: testenv.JSON(t, binary)},
		{name: "JSON body as bytes without jsonBody", body: []byte(`{"a":1}`), wantBody: testenv.JSON(t, []byte(`{"a":1}`))},
		{name: "jsonBody", jsonBody: true, body: []byte(`{"t": 21.5}`), wantBody: `{"t":21.5}`},
		{name: "jsonBody with a body that is not JSON", jsonBody: true, body: []byte("21.5C"), wantBody: testenv.JSON(t, []byte("21.5C"))},
		{name: "retained message sent on subscribing", retained: true, body: []byte("last"), wantBody: testenv.JSON(t, []byte("last"))},
	}
	broker := mqttenv.Start(t)
	gw := testenv.StartGateway(t, &gateway{})
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			topic := "bodies/" + strconv.Itoa(i)
			if tc.retained {
				if err := broker.Server().Publish(topic, tc.body, true, 1); err != nil {
					t.Fatal(err)
				}
			}
			ch := events(t, gw, fmt.Sprintf("url: %s\ntopic: %s\njsonBody: %t", broker.URL, topic, tc.jsonBody))
			waitSubscribed(t, broker, topic)
			if !tc.retained {
				if err := broker.Publish(topic, tc.body, 1); err != nil {
					t.Fatal(err)
				}
			}
			ev := ch.Next(t, 10*time.Second)
			r := testenv.DecodeJSON[received](t, ev)
			if ev.GetOrderingKey() != topic {
				t.Errorf("ordering key %q, want the topic %q", ev.GetOrderingKey(), topic)
			}
			if got := testenv.Compact(t, r.Body); got != tc.wantBody {
				t.Errorf("body = %s, want %s", got, tc.wantBody)
			}
			if r.Topic != topic || r.Retained != tc.retained || r.QoS != 1 {
				t.Errorf("event = %+v, want topic %q retained %t QoS 1", r, topic, tc.retained)
			}
		})
	}
}

// A broker restart mid-stream: the source reconnects, subscribes again and delivers what
// is published from then on. The embedded broker keeps sessions in memory only, so the
// restart loses the persistent session with whatever it held: messages the broker had
// queued or sent without an acknowledgement at the moment it stopped, and messages
// published after the restart before the source subscribed again. The test measures the
// first kind (messages published just before the restart).
func TestBrokerRestartMidStream(t *testing.T) {
	broker := mqttenv.Start(t)
	gw := testenv.StartGateway(t, &gateway{})
	ch := events(t, gw, fmt.Sprintf("url: %s\ntopic: restart\nclientId: restart-test\n%s", broker.URL, fastBackoff))
	waitSubscribed(t, broker, "restart")
	publish(t, broker, "restart", "before-", 100, 1)
	expect(t, ch, "restart", "before-", 100)

	const inFlight = 500
	publish(t, broker, "restart", "during-", inFlight, 1)
	broker.Restart()
	waitSubscribed(t, broker, "restart")
	publish(t, broker, "restart", "after-", 100, 1)

	// What arrives: part of the in-flight messages, in order and each once, then all the
	// messages published after the source subscribed again, in order.
	during := 0
	for {
		r := next(t, ch, 10*time.Second)
		body := r.text(t)
		if !strings.HasPrefix(body, "during-") {
			if body != "after-0" {
				t.Fatalf("first message after the in-flight ones = %q, want after-0", body)
			}
			break
		}
		if body != "during-"+strconv.Itoa(during) {
			t.Fatalf("in-flight message %q, want during-%d: out of order or repeated", body, during)
		}
		during++
	}
	t.Logf("in flight at the broker restart: %d published, %d delivered, %d lost with the broker's memory", inFlight, during, inFlight-during)
	for i := 1; i < 100; i++ {
		if r := next(t, ch, 10*time.Second); r.text(t) != "after-"+strconv.Itoa(i) {
			t.Fatalf("got %q, want after-%d", r.text(t), i)
		}
	}
	expectNothingQueued(t, ch)
}

// While the source is stopped, the broker keeps a persistent session's messages and sends
// them when the source is back; a clean session starts empty.
func TestSessionWhileAway(t *testing.T) {
	tests := []struct {
		name, config string
		wantQueued   int
	}{
		{name: "persistent session with a clientId", config: "clientId: away", wantQueued: 100},
		{name: "clean session", config: "clientId: away-clean\ncleanSession: true", wantQueued: 0},
	}
	broker := mqttenv.Start(t)
	gw := testenv.StartGateway(t, &gateway{})
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			topic := "away/" + strconv.Itoa(i)
			data := fmt.Sprintf("url: %s\ntopic: %s\n%s\n%s", broker.URL, topic, tc.config, fastBackoff)
			first := events(t, gw, data)
			waitSubscribed(t, broker, topic)
			publish(t, broker, topic, "first-", 10, 1)
			expect(t, first, topic, "first-", 10)
			first.Close()
			testenv.Eventually(t, 10*time.Second, 5*time.Millisecond, func() error {
				if broker.Subscribed(topic) {
					return fmt.Errorf("source still connected")
				}
				return nil
			})

			queued := newLedger(topic)
			if tc.wantQueued > 0 {
				queued.publish(t, broker, "away-", tc.wantQueued)
			} else {
				publish(t, broker, topic, "away-", 100, 1)
			}
			second := events(t, gw, data)
			waitSubscribed(t, broker, topic)
			if tc.wantQueued > 0 {
				queued.receiveAll(t, second)
				if queued.duplicates > 0 {
					t.Errorf("%d messages queued while away delivered twice", queued.duplicates)
				}
			}
			// Nothing else was queued: the next message is one published now.
			if err := broker.Publish(topic, []byte("marker"), 1); err != nil {
				t.Fatal(err)
			}
			if r := next(t, second, 10*time.Second); r.text(t) != "marker" {
				t.Fatalf("got %q, want the marker published after the source came back", r.text(t))
			}
		})
	}
}

// A network failure while the broker stays up: the source reconnects and, with its
// persistent session, loses nothing that was published meanwhile (the broker queued it,
// or sends it again for want of an acknowledgement).
func TestConnectionLossLosesNothing(t *testing.T) {
	broker := mqttenv.Start(t)
	proxy := testenv.StartProxy(t, broker.Addr)
	gw := testenv.StartGateway(t, &gateway{})
	ch := events(t, gw, fmt.Sprintf("url: tcp://%s\ntopic: loss\nclientId: loss-test\n%s", proxy.Addr, fastBackoff))
	waitSubscribed(t, broker, "loss")
	l := newLedger("loss")
	l.publish(t, broker, "connected-", 100)
	for round := range 5 {
		// Cut while messages are in flight, publish while the source is away, restore.
		l.publish(t, broker, fmt.Sprintf("inflight%d-", round), 100)
		proxy.Cut()
		testenv.Eventually(t, 10*time.Second, time.Millisecond, func() error {
			if broker.Connected("loss-test") {
				return fmt.Errorf("the broker has not noticed yet")
			}
			return nil
		})
		l.publish(t, broker, fmt.Sprintf("away%d-", round), 100)
		proxy.Restore()
		l.receiveAll(t, ch)
	}
	t.Logf("published %d, all delivered, %d of them twice (marked as duplicates)", len(l.published), l.duplicates)
}

// The source retries the first connect too: it starts before its broker exists.
func TestBrokerNotThereYet(t *testing.T) {
	broker := mqttenv.Start(t)
	broker.Stop()
	gw := testenv.StartGateway(t, &gateway{})
	ch := events(t, gw, fmt.Sprintf("url: %s\ntopic: late\n%s", broker.URL, fastBackoff))
	broker.StartAgain()
	waitSubscribed(t, broker, "late")
	publish(t, broker, "late", "m", 10, 1)
	expect(t, ch, "late", "m", 10)
}

func TestAuthentication(t *testing.T) {
	broker := mqttenv.Start(t, mqttenv.WithUser("gateway", "pw"))
	gw := testenv.StartGateway(t, &gateway{})
	ch := events(t, gw, fmt.Sprintf("url: %s\ntopic: auth\nusername: gateway\npassword: pw\n%s", broker.URL, fastBackoff))
	waitSubscribed(t, broker, "auth")
	publish(t, broker, "auth", "m", 3, 1)
	expect(t, ch, "auth", "m", 3)
}

func TestInvalidEventSources(t *testing.T) {
	cases := []testenv.InvalidCase{
		{Name: "bad URL", Data: "url: 'tcp://x:port'\ntopic: a", Reason: `mqtt.url: "tcp://x:port" is not a URL`},
		{Name: "missing topic", Data: "url: tcp://x:1883\nclientId: 1234", Reason: "mqtt.topic: is required"},
		{Name: "negative backoff", Data: "url: tcp://x:1883\ntopic: a\nbackoff: {duration: -1s}", Reason: "mqtt.backoff.duration: must not be negative, got -1s"},
		{Name: "QoS out of range", Data: "url: tcp://x:1883\ntopic: a\nqos: 7", Reason: "mqtt.qos: must be 0, 1 or 2, got 7"},
		{Name: "TLS with a plaintext URL", Data: "url: tcp://x:1883\ntopic: a\ntls: {}", Reason: `mqtt.tls: is set but url "tcp://x:1883" is not a TLS scheme (tcp:// connects without TLS): use ssl:// (or mqtts://)`},
	}
	gw := testenv.StartGateway(t, &gateway{})
	testenv.ExpectInvalid(t, gw.Client, cases)
}

// The whole path: broker -> gateway server -> the real gateway-client -> a sensor, with a
// v0.10 config as written (numeric clientId, backoff in nanoseconds).
func TestEndToEndThroughTheGatewayClient(t *testing.T) {
	broker := mqttenv.Start(t)
	sensor := testenv.StartEndToEnd(t, &gateway{}, "sensors", fmt.Sprintf(
		"url: %s\ntopic: sensors/+/temp\nclientId: 1234\njsonBody: true\nbackoff:\n  duration: 100000000\n  factor: 1", broker.URL))
	waitSubscribed(t, broker, "sensors/+/temp")
	for i := range 3 {
		if err := broker.Publish("sensors/kitchen/temp", []byte(fmt.Sprintf(`{"celsius":%d}`, 20+i)), 1); err != nil {
			t.Fatal(err)
		}
	}
	got, data := testenv.WaitJSON[received](t, sensor, 3, 60*time.Second)
	for i, ev := range got {
		r := data[i]
		want := fmt.Sprintf(`{"celsius":%d}`, 20+i)
		if ev.Type() != gatewayType || ev.Subject() != "sensors" || ev.Source() != "mqtt-gateway" ||
			string(r.Body) != want || r.Topic != "sensors/kitchen/temp" || r.QoS != 1 {
			t.Errorf("event %d: type %q subject %q source %q payload %s", i, ev.Type(), ev.Subject(), ev.Source(), ev.Data())
		}
	}
}

func TestTLS(t *testing.T) {
	cert, caPath := testenv.LoopbackCert(t)
	broker := mqttenv.Start(t, mqttenv.WithTLS(&tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}))
	gw := testenv.StartGateway(t, &gateway{})
	ch := events(t, gw, fmt.Sprintf("url: %s\ntopic: secure\ntls: {caCertPath: %s}\n%s", broker.URL, caPath, fastBackoff))
	waitSubscribed(t, broker, "secure")
	publish(t, broker, "secure", "m", 3, 1)
	expect(t, ch, "secure", "m", 3)
}

// A source whose clientId kept a session subscribed to another topic (an earlier
// configuration) delivers its own topic only.
func TestKeptSessionOfAnotherTopic(t *testing.T) {
	broker := mqttenv.Start(t)
	gw := testenv.StartGateway(t, &gateway{})
	old := events(t, gw, fmt.Sprintf("url: %s\ntopic: old\nclientId: reconfigured\n%s", broker.URL, fastBackoff))
	waitSubscribed(t, broker, "old")
	publish(t, broker, "old", "o", 1, 1)
	expect(t, old, "old", "o", 1)
	old.Close()
	testenv.Eventually(t, 10*time.Second, 5*time.Millisecond, func() error {
		if broker.Connected("reconfigured") {
			return fmt.Errorf("first source still connected")
		}
		return nil
	})

	ch := events(t, gw, fmt.Sprintf("url: %s\ntopic: new\nclientId: reconfigured\n%s", broker.URL, fastBackoff))
	waitSubscribed(t, broker, "new")
	if !broker.Subscribed("old") {
		t.Fatal("the kept session lost its old subscription: this test tests nothing")
	}
	publish(t, broker, "old", "stale", 5, 1)
	publish(t, broker, "new", "n", 5, 1)
	expect(t, ch, "new", "n", 5)
	expectNothingQueued(t, ch)
}

// Two sources with one clientId (both copied from the v0.10 example) would share one
// broker session, and each would take, and drop, messages of the other's subscription.
// The second does not start while the first runs, with an error naming both; the first
// loses nothing; once the first stops, the second starts, as it does when the client
// replaces a source at once (cancels its call, starts the new one).
func TestOneSourcePerClientID(t *testing.T) {
	broker := mqttenv.Start(t)
	gw := testenv.StartGateway(t, &gateway{})
	source := func(name, topic string) *testenv.Stream {
		return testenv.OpenBufferedStream(t, gw.Client, &gateways.EventSource{Name: name,
			Data: fmt.Sprintf("url: %s\ntopic: %s\nclientId: 1234\n%s", broker.URL, topic, fastBackoff)}, 1024)
	}
	a := source("a", "a")
	waitSubscribed(t, broker, "a")

	b := source("b", "b")
	err := b.End(t, 10*time.Second)
	if want := `mqtt.clientId: "1234" is in use by event source "a" on this gateway`; err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("the second source with clientId 1234 ended with %v, want an error containing %q", err, want)
	}
	if broker.Subscribed("b") {
		t.Fatal("the refused source subscribed")
	}
	publish(t, broker, "a", "m", 40, 1)
	expect(t, a, "a", "m", 40)

	a.Close() // the server may still be stopping it
	b = source("b", "b")
	waitSubscribed(t, broker, "b")
	publish(t, broker, "b", "n", 40, 1)
	expect(t, b, "b", "n", 40)
	expectNothingQueued(t, b)
}
