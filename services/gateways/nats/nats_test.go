package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/eventgate/eventgate/pkg/server"
	"github.com/eventgate/eventgate/pkg/testenv"
	"github.com/eventgate/eventgate/pkg/testenv/natsenv"
	"github.com/eventgate/eventgate/protos/gateways"
)

// received is a payload as a client decodes it.
type received struct {
	Subject   string              `json:"subject"`
	Header    map[string][]string `json:"header"`
	Body      json.RawMessage     `json:"body"`
	JetStream *jetStreamInfo      `json:"jetStream"`
}

// bytesBody is the body of a payload that carries bytes (base64 in JSON).
func (r received) bytesBody(t testing.TB) []byte {
	t.Helper()
	var b []byte
	if err := json.Unmarshal(r.Body, &b); err != nil {
		t.Fatalf("body %s is not base64 bytes: %v", r.Body, err)
	}
	return b
}

// events starts an event source on gw. Its events are read ahead of the test (core NATS
// drops what a slow subscriber leaves pending, and a test checking one event must not
// make the source fall behind).
func events(t testing.TB, gw *testenv.Gateway, data string) *testenv.Stream {
	t.Helper()
	return testenv.OpenBufferedStream(t, gw.Client, &gateways.EventSource{Name: "test", Data: data}, 1024)
}

// next is the next event's payload, or a test failure after timeout.
func next(t testing.TB, s *testenv.Stream, timeout time.Duration) received {
	t.Helper()
	return testenv.NextJSON[received](t, s, timeout)
}

func connect(t testing.TB, url string, opts ...nats.Option) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// publish sends bodies "<prefix>0" .. "<prefix>n-1" and waits until the server has them.
func publish(t testing.TB, nc *nats.Conn, subject, prefix string, n int) {
	t.Helper()
	for i := range n {
		if err := nc.Publish(subject, []byte(prefix+strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
}

// expect reads n events and fails unless they are "<prefix>0" .. "<prefix>n-1", in order.
func expect(t testing.TB, s *testenv.Stream, subject, prefix string, n int) {
	t.Helper()
	for i := range n {
		r := next(t, s, 10*time.Second)
		if want := prefix + strconv.Itoa(i); r.Subject != subject || string(r.bytesBody(t)) != want {
			t.Fatalf("event %d = subject %q body %s, want subject %q body %q", i, r.Subject, r.Body, subject, want)
		}
	}
}

// waitSubscribed publishes probes until one arrives, which proves the source is
// subscribed (core NATS keeps nothing for a subscriber that is not there yet); it returns
// how many probes were published before that, which were lost.
func waitSubscribed(t testing.TB, nc *nats.Conn, s *testenv.Stream, subject string) (lost int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for i := 0; ; i++ {
		if time.Now().After(deadline) {
			t.Fatal("source not subscribed within 20s")
		}
		if err := nc.Publish(subject, []byte("probe"+strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
		ev, err := s.TryNext(50 * time.Millisecond)
		if errors.Is(err, testenv.ErrNoEvent) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		r := testenv.DecodeJSON[received](t, ev)
		if want := "probe" + strconv.Itoa(i); string(r.bytesBody(t)) != want {
			// An earlier probe that arrived late: the next read must be ours.
			if r = next(t, s, 5*time.Second); string(r.bytesBody(t)) != want {
				t.Fatalf("probe %d: got %q", i, r.bytesBody(t))
			}
		}
		return i
	}
}

const fastBackoff = "backoff: {duration: 20ms, factor: 1}"

func TestMessagesArriveExactlyOnceInOrder(t *testing.T) {
	url := natsenv.Start(t, -1)
	gw := testenv.StartGateway(t, newGateway())
	ch := events(t, gw, fmt.Sprintf("url: %s\nsubject: orders.*\n%s", url, fastBackoff))
	nc := connect(t, url)
	waitSubscribed(t, nc, ch, "orders.probe")

	const n = 500
	publish(t, nc, "orders.created", "order-", n)
	expect(t, ch, "orders.created", "order-", n)
	if ev := ch.Queued(); ev != nil {
		t.Fatalf("an event beyond the %d published: %s", n, ev.GetPayload())
	}
}

func TestBodiesAndHeaders(t *testing.T) {
	binary := make([]byte, 256)
	for i := range binary {
		binary[i] = byte(i)
	}
	tests := []struct {
		name     string
		jsonBody bool
		msg      *nats.Msg
		wantBody string // the payload's body as JSON
		wantHdr  map[string][]string
	}{
		{name: "binary body intact", msg: &nats.Msg{Data: binary}, wantBody: testenv.JSON(t, binary)},
		{name: "empty body", msg: &nats.Msg{}, wantBody: `""`},
		{name: "JSON body as bytes without jsonBody", msg: &nats.Msg{Data: []byte(`{"a":1}`)}, wantBody: testenv.JSON(t, []byte(`{"a":1}`))},
		{name: "jsonBody", jsonBody: true, msg: &nats.Msg{Data: []byte(`{"a": [1, 2]}`)}, wantBody: `{"a":[1,2]}`},
		{name: "jsonBody with a body that is not JSON", jsonBody: true, msg: &nats.Msg{Data: []byte("plain")}, wantBody: testenv.JSON(t, []byte("plain"))},
		{
			name:     "headers",
			msg:      &nats.Msg{Header: nats.Header{"Trace-Id": {"7f3a"}, "Tags": {"a", "b"}}, Data: []byte("x")},
			wantBody: testenv.JSON(t, []byte("x")),
			wantHdr:  map[string][]string{"Trace-Id": {"7f3a"}, "Tags": {"a", "b"}},
		},
	}
	url := natsenv.Start(t, -1)
	nc := connect(t, url)
	gw := testenv.StartGateway(t, newGateway())
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			subject := "bodies." + strings.ReplaceAll(tc.name, " ", "_")
			ch := events(t, gw, fmt.Sprintf("url: %s\nsubject: %s\njsonBody: %t", url, subject, tc.jsonBody))
			waitSubscribed(t, nc, ch, subject)
			tc.msg.Subject = subject
			if err := nc.PublishMsg(tc.msg); err != nil {
				t.Fatal(err)
			}
			r := next(t, ch, 10*time.Second)
			if got := testenv.Compact(t, r.Body); got != tc.wantBody {
				t.Errorf("body = %s, want %s", got, tc.wantBody)
			}
			if fmt.Sprint(r.Header) != fmt.Sprint(tc.wantHdr) {
				t.Errorf("header = %v, want %v", r.Header, tc.wantHdr)
			}
		})
	}
}

// A broker restart mid-stream: the source reconnects and delivers what is published after
// it subscribed again. Core NATS keeps nothing for absent subscribers: messages published
// while the broker was down could not be published at all, and those published after the
// restart but before the source subscribed again (here the probes) are lost.
func TestBrokerRestartMidStream(t *testing.T) {
	first := natsenv.StartServer(t, &natsserver.Options{Port: -1})
	url := first.ClientURL()
	port := first.Addr().(*net.TCPAddr).Port
	gw := testenv.StartGateway(t, newGateway())
	ch := events(t, gw, fmt.Sprintf("url: %s\nsubject: restart\n%s", url, fastBackoff))

	before := connect(t, url)
	waitSubscribed(t, before, ch, "restart")
	publish(t, before, "restart", "before-", 100)
	expect(t, ch, "restart", "before-", 100)

	first.Shutdown()
	first.WaitForShutdown()
	natsenv.StartServer(t, &natsserver.Options{Port: port})

	after := connect(t, url)
	lost := waitSubscribed(t, after, ch, "restart")
	t.Logf("probes published after the restart before the source had subscribed again (lost): %d", lost)
	publish(t, after, "restart", "after-", 100)
	expect(t, ch, "restart", "after-", 100)
}

// The source retries the first connect too: it starts before its broker exists.
func TestBrokerNotThereYet(t *testing.T) {
	probe := natsenv.StartServer(t, &natsserver.Options{Port: -1})
	port := probe.Addr().(*net.TCPAddr).Port
	url := probe.ClientURL()
	probe.Shutdown()
	probe.WaitForShutdown()

	gw := testenv.StartGateway(t, newGateway())
	ch := events(t, gw, fmt.Sprintf("url: %s\nsubject: late\n%s", url, fastBackoff))
	natsenv.StartServer(t, &natsserver.Options{Port: port})
	nc := connect(t, url)
	waitSubscribed(t, nc, ch, "late")
	publish(t, nc, "late", "m", 10)
	expect(t, ch, "late", "m", 10)
}

func TestAuthentication(t *testing.T) {
	tests := []struct {
		name   string
		server natsserver.Options
		source string
	}{
		{name: "token", server: natsserver.Options{Authorization: "s3cret"}, source: "token: s3cret"},
		{name: "username and password", server: natsserver.Options{Username: "gw", Password: "pw"}, source: "username: gw\npassword: pw"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opts := tc.server
			opts.Port = -1
			ns := natsenv.StartServer(t, &opts)
			gw := testenv.StartGateway(t, newGateway())
			ch := events(t, gw, fmt.Sprintf("url: %s\nsubject: auth\n%s\n%s", ns.ClientURL(), tc.source, fastBackoff))
			nc := connect(t, ns.ClientURL(), nats.Token(opts.Authorization), nats.UserInfo(opts.Username, opts.Password))
			waitSubscribed(t, nc, ch, "auth")
		})
	}
}

func TestInvalidEventSources(t *testing.T) {
	cases := []testenv.InvalidCase{
		{Name: "bad URL", Data: "url: 'nats://x:port'\nsubject: a", Reason: `nats.url: "nats://x:port" is not a URL`},
		{Name: "missing subject", Data: "url: nats://x:4222", Reason: "nats.subject: is required"},
		{Name: "negative backoff", Data: "url: nats://x:4222\nsubject: a\nbackoff: {duration: -10000000000}", Reason: "nats.backoff.duration: must not be negative, got -10s"},
		{Name: "JetStream without consumer", Data: "url: nats://x:4222\nsubject: a\njetStream: {stream: S}", Reason: "nats.jetStream.consumer: is required (the durable consumer's name)"},
		{Name: "JetStream bad stream name", Data: "url: nats://x:4222\nsubject: a\njetStream: {stream: a.b, consumer: c}", Reason: `nats.jetStream.stream: "a.b" must not contain`},
		{Name: "JetStream unknown deliver policy", Data: "url: nats://x:4222\nsubject: a\njetStream: {stream: S, consumer: c, deliverPolicy: first}", Reason: `nats.jetStream.deliverPolicy: "first" is not one of all, new, last`},
		{Name: "JetStream negative ackWait", Data: "url: nats://x:4222\nsubject: a\njetStream: {stream: S, consumer: c, ackWait: -5s}", Reason: "nats.jetStream.ackWait: must not be negative, got -5s"},
		{Name: "JetStream negative maxAckPending", Data: "url: nats://x:4222\nsubject: a\njetStream: {stream: S, consumer: c, maxAckPending: -2}", Reason: "nats.jetStream.maxAckPending: must not be negative, got -2"},
	}
	gw := testenv.StartGateway(t, newGateway())
	testenv.ExpectInvalid(t, gw.Client, cases)
}

// A client too slow for the publisher: the source holds what its bounds allow and the rest
// is dropped and counted. Every message is either delivered, once, in order, or counted.
func TestSlowClientDropsAreCounted(t *testing.T) {
	url, stream, sub := startSlowSource(t, t.Context())

	// The test does not read the stream while publishing: gRPC flow control stops the
	// source once its window is full, and the source's queue overflows.
	const n = 20000
	nc := connect(t, url)
	body := bytes.Repeat([]byte("x"), 1000)
	for i := range n {
		if err := nc.Publish("slow", append([]byte(fmt.Sprintf("%08d", i)), body...)); err != nil {
			t.Fatal(err)
		}
	}
	flushUntilDropped(t, nc, sub)

	last, got := -1, 0
	testenv.Eventually(t, 30*time.Second, 0, func() error {
		dropped, err := sub.Dropped()
		if err != nil {
			t.Fatal(err)
		}
		if got+dropped == n {
			return nil
		}
		ev, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		var r received
		if err := json.Unmarshal(ev.GetPayload(), &r); err != nil {
			t.Fatal(err)
		}
		seq, err := strconv.Atoi(string(r.bytesBody(t)[:8]))
		if err != nil || seq <= last {
			t.Fatalf("message %q after %d: out of order or duplicated", r.bytesBody(t)[:8], last)
		}
		last, got = seq, got+1
		return fmt.Errorf("received %d + dropped %d != published %d", got, dropped, n)
	})
	dropped, _ := sub.Dropped()
	t.Logf("published %d, delivered %d, dropped and counted %d", n, got, dropped)
}

// overflow starts a core NATS source with room for 16 messages on a call that reads
// nothing, and publishes more than the call and the source can hold: the source, blocked on
// the call, drops the rest. It returns the subscription, the logs, and a func that ends
// the call.
func overflow(t *testing.T) (*nats.Subscription, *testenv.SyncBuffer, context.CancelFunc) {
	t.Helper()
	logs, withLogs := testenv.CaptureLogs(t)
	ctx, cancel := context.WithCancel(t.Context())
	url, _, sub := startSlowSource(t, ctx, withLogs)
	nc := connect(t, url)
	body := bytes.Repeat([]byte("x"), 1000)
	for range 2000 {
		if err := nc.Publish("slow", body); err != nil {
			t.Fatal(err)
		}
	}
	flushUntilDropped(t, nc, sub)
	return sub, logs, cancel
}

// startSlowSource starts a NATS server and, on a gateway server with opts, a core NATS
// source of subject "slow" with room for 16 messages, on a call made with ctx. It returns
// the NATS server's URL, the call, and the source's subscription once it subscribed.
func startSlowSource(t *testing.T, ctx context.Context, opts ...server.Option) (string, gateways.Eventing_StartEventSourceClient, *nats.Subscription) {
	t.Helper()
	url := natsenv.Start(t, -1)
	subs := make(chan *nats.Subscription, 1)
	gw := newGateway()
	gw.pendingMsgs = 16
	gw.subscribed = func(s *nats.Subscription) { subs <- s }
	srv := testenv.StartGateway(t, gw, opts...)
	stream, err := srv.Client.StartEventSource(ctx, &gateways.EventSource{Name: "slow", Data: "url: " + url + "\nsubject: slow"})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case sub := <-subs:
		return url, stream, sub
	case <-time.After(10 * time.Second):
		t.Fatal("source did not subscribe")
		return "", nil, nil
	}
}

// flushUntilDropped flushes what nc published and waits until sub dropped some of it.
func flushUntilDropped(t *testing.T, nc *nats.Conn, sub *nats.Subscription) {
	t.Helper()
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, 10*time.Millisecond, func() error {
		if d, _ := sub.Dropped(); d == 0 {
			return errors.New("nothing dropped yet")
		}
		return nil
	})
}

var dropReport = regexp.MustCompile(`msg="client too slow: NATS messages dropped" .*\bdropped=(\d+) droppedSinceConnect=(\d+)`)

// loggedDrops sums the drops logs report, and says the total the last report gave.
func loggedDrops(t testing.TB, logs *testenv.SyncBuffer) (sum, last int) {
	t.Helper()
	for _, m := range dropReport.FindAllStringSubmatch(logs.String(), -1) {
		n, _ := strconv.Atoi(m[1])
		sum += n
		last, _ = strconv.Atoi(m[2])
	}
	return sum, last
}

// Drops are logged while the source is blocked on a slow client, when no message gets
// through: every drop is in a log within seconds.
func TestDropsAreLoggedWhileNothingGetsThrough(t *testing.T) {
	sub, logs, _ := overflow(t)
	testenv.Eventually(t, 10*time.Second, 10*time.Millisecond, func() error {
		dropped, err := sub.Dropped()
		if err != nil {
			t.Fatal(err)
		}
		if logged, _ := loggedDrops(t, logs); logged != dropped {
			return fmt.Errorf("logged %d dropped messages, the subscription dropped %d", logged, dropped)
		}
		return nil
	})
}

// The drops not logged yet when the call ends are logged then: the count goes with the
// connection.
func TestDropsAreLoggedWhenTheSessionEnds(t *testing.T) {
	sub, logs, endCall := overflow(t)
	dropped, err := sub.Dropped()
	if err != nil {
		t.Fatal(err)
	}
	endCall()
	testenv.Eventually(t, 10*time.Second, 10*time.Millisecond, func() error {
		if logged, last := loggedDrops(t, logs); logged < dropped || logged != last {
			return fmt.Errorf("logged %d dropped messages (last report: %d since connect), the subscription dropped at least %d", logged, last, dropped)
		}
		return nil
	})
}

// The whole path: broker -> gateway server -> the real gateway-client -> a sensor, with a
// v0.10 config as written (backoff in nanoseconds).
func TestEndToEndThroughTheGatewayClient(t *testing.T) {
	url := natsenv.Start(t, -1)
	sensor := testenv.StartEndToEnd(t, newGateway(), "orders", fmt.Sprintf(
		"url: %s\nsubject: orders.*\njsonBody: true\nbackoff:\n  duration: 100000000\n  factor: 1", url))
	// Core NATS keeps nothing for a subscriber that is not there yet: probe until one
	// reaches the sensor, then publish the messages under test.
	nc := connect(t, url)
	testenv.Eventually(t, 60*time.Second, 50*time.Millisecond, func() error {
		if err := nc.Publish("orders.probe", []byte(`"probe"`)); err != nil {
			return err
		}
		if n := len(sensor.Received()); n == 0 {
			return fmt.Errorf("no probe at the sensor yet")
		}
		return nil
	})
	for i := range 3 {
		if err := nc.Publish("orders.created", []byte(fmt.Sprintf(`{"order":%d}`, i+1))); err != nil {
			t.Fatal(err)
		}
	}
	var orders []received
	testenv.Eventually(t, 60*time.Second, 20*time.Millisecond, func() error {
		orders = orders[:0]
		for i, ev := range sensor.Received() {
			var r received
			if err := json.Unmarshal(ev.Data(), &r); err != nil {
				t.Fatalf("event %d data %s: %v", i, ev.Data(), err)
			}
			if ev.Type() != gatewayType || ev.Subject() != "orders" || ev.Source() != "nats-gateway" {
				t.Fatalf("event %d: type %q subject %q source %q", i, ev.Type(), ev.Subject(), ev.Source())
			}
			if r.Subject == "orders.created" {
				orders = append(orders, r)
			}
		}
		if len(orders) < 3 {
			return fmt.Errorf("%d orders at the sensor", len(orders))
		}
		return nil
	})
	for i, r := range orders {
		if want := fmt.Sprintf(`{"order":%d}`, i+1); string(r.Body) != want {
			t.Errorf("order %d body %s, want %s", i, r.Body, want)
		}
	}
	if len(orders) != 3 {
		t.Errorf("%d orders at the sensor, want 3", len(orders))
	}
}

func TestTLS(t *testing.T) {
	cert, caPath := testenv.LoopbackCert(t)
	ns := natsenv.StartServer(t, &natsserver.Options{Port: -1, TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, TLSTimeout: 5})
	url := strings.Replace(ns.ClientURL(), "nats://", "tls://", 1)
	gw := testenv.StartGateway(t, newGateway())
	ch := events(t, gw, fmt.Sprintf("url: %s\nsubject: secure\ntls: {caCertPath: %s}\n%s", url, caPath, fastBackoff))
	nc := connect(t, url, nats.RootCAs(caPath))
	waitSubscribed(t, nc, ch, "secure")
	publish(t, nc, "secure", "m", 3)
	expect(t, ch, "secure", "m", 3)
}
