package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/eventgate/eventgate/pkg/testenv"
	"github.com/eventgate/eventgate/protos/gateways"
)

// probeMethod is a method no test source accepts: a path that answers it with 405 has an
// active route, one that answers 404 has none.
const probeMethod = "EVENTGATE-PROBE"

// eventSource is one running source and the events of its stream.
type eventSource struct {
	events chan *gateways.Event
	// done receives the stream's end (io.EOF or the status error).
	done   chan error
	cancel context.CancelFunc
}

// startSource starts an event source on the gateway server and reads its stream into
// events. It does not wait for the route: see waitActive.
func startSource(t *testing.T, gw *testenv.Gateway, name, data string) *eventSource {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	stream, err := gw.Client.StartEventSource(ctx, &gateways.EventSource{Id: name, Name: name, Data: data})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	es := &eventSource{events: make(chan *gateways.Event, 1000), done: make(chan error, 1), cancel: cancel}
	go func() {
		for {
			ev, err := stream.Recv()
			if err != nil {
				es.done <- err
				return
			}
			es.events <- ev
		}
	}()
	t.Cleanup(cancel)
	return es
}

func (es *eventSource) next(t *testing.T) *gateways.Event {
	t.Helper()
	select {
	case ev := <-es.events:
		return ev
	case err := <-es.done:
		t.Fatalf("stream ended instead of an event: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("no event within 10s")
	}
	return nil
}

// ended waits for the stream's end and returns its status.
func (es *eventSource) ended(t *testing.T) *status.Status {
	t.Helper()
	select {
	case err := <-es.done:
		return status.Convert(err)
	case <-time.After(10 * time.Second):
		t.Fatal("stream still open after 10s")
	}
	return nil
}

// send makes one request and returns the status, the body and the header.
func send(t *testing.T, client *http.Client, method, url string, body io.Reader, header ...string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(raw), resp.Header
}

// waitActive waits until url has an active route (405 to the probe method).
func waitActive(t *testing.T, client *http.Client, url string) {
	t.Helper()
	testenv.Eventually(t, 10*time.Second, 5*time.Millisecond, func() error {
		return probe(client, url, http.StatusMethodNotAllowed)
	})
}

func probe(client *http.Client, url string, want int) error {
	req, _ := http.NewRequest(probeMethod, url, nil)
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != want {
		return fmt.Errorf("%s answers %d, want %d", url, resp.StatusCode, want)
	}
	return nil
}

func newClient(t *testing.T) *http.Client {
	c := &http.Client{Timeout: 30 * time.Second}
	t.Cleanup(c.CloseIdleConnections)
	return c
}

// payload is the event payload as a sensor reads it.
type payload struct {
	Header       http.Header     `json:"header"`
	Body         json.RawMessage `json:"body"`
	BodyEncoding string          `json:"bodyEncoding"`
}

func decodePayload(t *testing.T, ev *gateways.Event) payload {
	t.Helper()
	if ev.GetContentType() != "application/json" {
		t.Errorf("content type = %q", ev.GetContentType())
	}
	var p payload
	if err := json.Unmarshal(ev.GetPayload(), &p); err != nil {
		t.Fatalf("payload %s: %v", ev.GetPayload(), err)
	}
	return p
}

func TestRequests(t *testing.T) {
	gw := testenv.StartGateway(t, newGateway("127.0.0.1"))
	client := newClient(t)
	port := freePort(t)
	base := "http://127.0.0.1:" + port
	es := startSource(t, gw, "hook", `{endpoint: /hook, port: "`+port+`", method: POST}`)
	// Any RFC 7231 method, not only the registered ones.
	purge := startSource(t, gw, "purge", `{endpoint: /cache, port: "`+port+`", method: PURGE}`)
	waitActive(t, client, base+"/hook")
	waitActive(t, client, base+"/cache")

	tests := []struct {
		name, method, path string
		source             *eventSource // the stream the event arrives on (es when nil)
		body               []byte
		header             []string
		wantStatus         int
		wantAllow          string
		wantBody           string // the event's body as JSON; empty: no event expected
		wantEncoding       string
	}{
		{name: "JSON body", method: "POST", path: "/hook", body: []byte(`{"n": 1, "s": ["a"]}`),
			header: []string{"Content-Type", "application/json", "X-Github-Event", "push"}, wantStatus: 200, wantBody: `{"n": 1, "s": ["a"]}`},
		{name: "text body", method: "POST", path: "/hook", body: []byte("hello \"world\"\n"), wantStatus: 200, wantBody: `"hello \"world\"\n"`},
		{name: "empty body", method: "POST", path: "/hook", wantStatus: 200, wantBody: `""`},
		{name: "binary body", method: "POST", path: "/hook", body: []byte{0xff, 0x00, 0xfe}, wantStatus: 200, wantBody: `"/wD+"`, wantEncoding: "base64"},
		// Valid JSON but Latin-1: embedded, it would make the payload invalid JSON.
		{name: "JSON body not UTF-8", method: "POST", path: "/hook", body: []byte("{\"name\":\"Jos\xe9\"}"),
			header: []string{"Content-Type", "application/json; charset=iso-8859-1"}, wantStatus: 200, wantBody: `"eyJuYW1lIjoiSm9z6SJ9"`, wantEncoding: "base64"},
		{name: "wrong method", method: "GET", path: "/hook", wantStatus: 405, wantAllow: "POST"},
		{name: "custom method", method: "PURGE", path: "/cache", body: []byte(`["a"]`), wantStatus: 200, wantBody: `["a"]`, source: purge},
		{name: "wrong method on the custom route", method: "POST", path: "/cache", wantStatus: 405, wantAllow: "PURGE"},
		{name: "unknown path", method: "POST", path: "/other", body: []byte("x"), wantStatus: 404},
		{name: "path is exact", method: "POST", path: "/hook/", body: []byte("x"), wantStatus: 404},
		{name: "health", method: "GET", path: "/health", wantStatus: 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, body, header := send(t, client, tc.method, base+tc.path, bytes.NewReader(tc.body), tc.header...)
			if code != tc.wantStatus {
				t.Fatalf("status = %d (%s), want %d", code, body, tc.wantStatus)
			}
			if got := header.Get("Allow"); got != tc.wantAllow {
				t.Errorf("Allow = %q, want %q", got, tc.wantAllow)
			}
			if tc.wantBody == "" {
				return
			}
			src, name := es, "hook"
			if tc.source != nil {
				src, name = tc.source, "purge"
			}
			ev := src.next(t)
			if ev.GetName() != name || ev.GetId() == "" {
				t.Errorf("event name %q id %q", ev.GetName(), ev.GetId())
			}
			// Each request its own key: the client may deliver them concurrently.
			if ev.GetOrderingKey() != ev.GetId() {
				t.Errorf("ordering key %q, want the event's id %q", ev.GetOrderingKey(), ev.GetId())
			}
			p := decodePayload(t, ev)
			if string(p.Body) != tc.wantBody || p.BodyEncoding != tc.wantEncoding {
				t.Errorf("body = %s encoding %q, want %s %q", p.Body, p.BodyEncoding, tc.wantBody, tc.wantEncoding)
			}
			for i := 0; i+1 < len(tc.header); i += 2 {
				if got := p.Header.Get(tc.header[i]); got != tc.header[i+1] {
					t.Errorf("header %s = %q, want %q", tc.header[i], got, tc.header[i+1])
				}
			}
		})
	}
	if n := len(es.events) + len(purge.events); n != 0 {
		t.Errorf("%d unexpected events", n)
	}
}

func TestAuthToken(t *testing.T) {
	gw := testenv.StartGateway(t, newGateway("127.0.0.1"))
	client := newClient(t)
	port := freePort(t)
	url := "http://127.0.0.1:" + port + "/auth"
	es := startSource(t, gw, "auth", `{endpoint: /auth, port: `+port+`, method: POST, authToken: "s3cret"}`)
	waitActive(t, client, url)

	tests := []struct {
		name, authorization string
		want                int
	}{
		{name: "no header", want: 401},
		{name: "wrong token", authorization: "Bearer s3crex", want: 401},
		{name: "prefix of the token", authorization: "Bearer s3c", want: 401},
		{name: "basic scheme", authorization: "Basic s3cret", want: 401},
		{name: "right token", authorization: "Bearer s3cret", want: 200},
		{name: "scheme is case-insensitive", authorization: "bearer s3cret", want: 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var header []string
			if tc.authorization != "" {
				header = []string{"Authorization", tc.authorization}
			}
			code, body, h := send(t, client, "POST", url, strings.NewReader(`{}`), header...)
			if code != tc.want {
				t.Fatalf("status = %d (%s), want %d", code, body, tc.want)
			}
			if code == 401 && h.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
			if code != 200 {
				return
			}
			p := decodePayload(t, es.next(t))
			if _, ok := p.Header["Authorization"]; ok {
				t.Errorf("the token travels on in the payload: %v", p.Header)
			}
		})
	}
	if n := len(es.events); n != 0 {
		t.Errorf("%d events from refused requests", n)
	}
}

// bodyWithoutLength hides the length, so the client sends the body chunked.
type bodyWithoutLength struct{ io.Reader }

func TestPayloadLimit(t *testing.T) {
	gw := testenv.StartGateway(t, newGateway("127.0.0.1"))
	client := newClient(t)
	port := freePort(t)
	url := "http://127.0.0.1:" + port + "/small"
	es := startSource(t, gw, "small", `{endpoint: /small, port: "`+port+`", method: PUT, maxPayloadSize: 10}`)
	waitActive(t, client, url)

	tests := []struct {
		name string
		body io.Reader
		want int
	}{
		{name: "at the limit", body: strings.NewReader("0123456789"), want: 200},
		{name: "over, with Content-Length", body: strings.NewReader("0123456789x"), want: 413},
		{name: "over, chunked", body: bodyWithoutLength{strings.NewReader("0123456789x")}, want: 413},
		{name: "at the limit, chunked", body: bodyWithoutLength{strings.NewReader("abcdefghij")}, want: 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, body, _ := send(t, client, "PUT", url, tc.body)
			if code != tc.want {
				t.Fatalf("status = %d (%s), want %d", code, body, tc.want)
			}
			if code == 200 {
				if p := decodePayload(t, es.next(t)); len(p.Body) != 12 { // 10 bytes, quoted
					t.Errorf("body = %s", p.Body)
				}
			}
		})
	}
	if n := len(es.events); n != 0 {
		t.Errorf("%d events from refused requests", n)
	}
}

func TestTLS(t *testing.T) {
	gw := testenv.StartGateway(t, newGateway("127.0.0.1"))
	cert := newTestCert(t)
	port := freePort(t)
	url := "https://127.0.0.1:" + port + "/secure"
	es := startSource(t, gw, "secure", fmt.Sprintf(`{endpoint: /secure, port: "%s", method: POST, serverCertPath: %q, serverKeyPath: %q}`,
		port, cert.certPath, cert.keyPath))
	waitActive(t, cert.client, url)

	code, body, _ := send(t, cert.client, "POST", url, strings.NewReader(`{"secure": true}`))
	if code != 200 {
		t.Fatalf("status = %d (%s)", code, body)
	}
	if p := decodePayload(t, es.next(t)); string(p.Body) != `{"secure": true}` {
		t.Errorf("body = %s", p.Body)
	}

	t.Run("plain HTTP to the TLS port", func(t *testing.T) {
		code, _, _ := send(t, newClient(t), "POST", "http://127.0.0.1:"+port+"/secure", strings.NewReader("x"))
		if code != http.StatusBadRequest {
			t.Errorf("status = %d, want 400", code)
		}
	})
	t.Run("plain source on the TLS port", func(t *testing.T) {
		plain := startSource(t, gw, "plain", `{endpoint: /plain, port: "`+port+`", method: POST}`)
		st := plain.ended(t)
		want := fmt.Sprintf("webhook: port %s serves TLS with %s and %s for other event sources; this one asks for plain HTTP", port, cert.certPath, cert.keyPath)
		if st.Code() != codes.FailedPrecondition || st.Message() != want {
			t.Errorf("stream ended with %v %q, want FailedPrecondition %q", st.Code(), st.Message(), want)
		}
	})
	t.Run("another certificate on the TLS port", func(t *testing.T) {
		other := newTestCert(t)
		es := startSource(t, gw, "other", fmt.Sprintf(`{endpoint: /other, port: "%s", method: POST, serverCertPath: %q, serverKeyPath: %q}`,
			port, other.certPath, other.keyPath))
		if st := es.ended(t); st.Code() != codes.FailedPrecondition {
			t.Errorf("stream ended with %v %q, want FailedPrecondition", st.Code(), st.Message())
		}
	})
}

func TestSharedPortsAndConflicts(t *testing.T) {
	gw := testenv.StartGateway(t, newGateway("127.0.0.1"))
	client := newClient(t)
	port, port2 := freePort(t), freePort(t)
	base, base2 := "http://127.0.0.1:"+port, "http://127.0.0.1:"+port2
	foo := startSource(t, gw, "foo", `{endpoint: /foo, port: "`+port+`", method: POST}`)
	bar := startSource(t, gw, "bar", `{endpoint: /bar, port: "`+port+`", method: POST}`)
	fooPut := startSource(t, gw, "foo-put", `{endpoint: /foo, port: "`+port+`", method: PUT}`)
	baz := startSource(t, gw, "baz", `{endpoint: /foo, port: "`+port2+`", method: POST}`)
	for _, url := range []string{base + "/foo", base + "/bar", base2 + "/foo"} {
		waitActive(t, client, url)
	}
	testenv.Eventually(t, 10*time.Second, 5*time.Millisecond, func() error {
		_, _, h := send(t, client, "GET", base+"/foo", nil)
		if got := h.Get("Allow"); got != "POST, PUT" {
			return fmt.Errorf("Allow = %q", got)
		}
		return nil
	})

	// Each request reaches its own source's stream, and no other.
	for _, c := range []struct {
		method, url string
		es          *eventSource
	}{
		{"POST", base + "/foo", foo}, {"POST", base + "/bar", bar}, {"PUT", base + "/foo", fooPut}, {"POST", base2 + "/foo", baz},
	} {
		if code, body, _ := send(t, client, c.method, c.url, strings.NewReader(`"`+c.method+c.url+`"`)); code != 200 {
			t.Fatalf("%s %s = %d (%s)", c.method, c.url, code, body)
		}
		if p := decodePayload(t, c.es.next(t)); string(p.Body) != `"`+c.method+c.url+`"` {
			t.Errorf("%s %s delivered %s", c.method, c.url, p.Body)
		}
	}
	for name, es := range map[string]*eventSource{"foo": foo, "bar": bar, "foo-put": fooPut, "baz": baz} {
		if n := len(es.events); n != 0 {
			t.Errorf("%s got %d extra events", name, n)
		}
	}

	t.Run("same route twice", func(t *testing.T) {
		dup := startSource(t, gw, "dup", `{endpoint: /foo, port: "`+port+`", method: POST}`)
		st := dup.ended(t)
		want := fmt.Sprintf(`webhook: event source "foo" already serves POST /foo on port %s`, port)
		if st.Code() != codes.AlreadyExists || st.Message() != want {
			t.Errorf("stream ended with %v %q, want AlreadyExists %q", st.Code(), st.Message(), want)
		}
		// The conflict leaves the original route alone.
		if code, _, _ := send(t, client, "POST", base+"/foo", strings.NewReader("1")); code != 200 {
			t.Errorf("foo after the conflict = %d", code)
		}
		foo.next(t)
	})
	t.Run("port taken by another program", func(t *testing.T) {
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer lis.Close()
		taken := lis.Addr().(*net.TCPAddr).Port
		es := startSource(t, gw, "taken", fmt.Sprintf(`{endpoint: /x, port: %d, method: POST}`, taken))
		st := es.ended(t)
		if st.Code() != codes.Unavailable || !strings.Contains(st.Message(), fmt.Sprintf("webhook: listen on 127.0.0.1:%d: ", taken)) {
			t.Errorf("stream ended with %v %q, want Unavailable listen error", st.Code(), st.Message())
		}
	})
}

func TestRemoveAndReAdd(t *testing.T) {
	gw := testenv.StartGateway(t, newGateway("127.0.0.1"))
	client := newClient(t)
	port := freePort(t)
	base := "http://127.0.0.1:" + port
	a := startSource(t, gw, "a", `{endpoint: /a, port: "`+port+`", method: POST}`)
	b := startSource(t, gw, "b", `{endpoint: /b, port: "`+port+`", method: POST}`)
	waitActive(t, client, base+"/a")
	waitActive(t, client, base+"/b")

	// Removing a deactivates its route; the server stays for b.
	a.cancel()
	testenv.Eventually(t, 10*time.Second, 5*time.Millisecond, func() error { return probe(client, base+"/a", 404) })
	if code, _, _ := send(t, client, "POST", base+"/a", strings.NewReader("x")); code != 404 {
		t.Errorf("removed route answers %d, want 404", code)
	}
	if code, _, _ := send(t, client, "POST", base+"/b", strings.NewReader("x")); code != 200 {
		t.Errorf("b answers %d after a was removed", code)
	}
	b.next(t)

	// Removing the last route closes the server: nothing listens on the port any more.
	b.cancel()
	testenv.Eventually(t, 10*time.Second, 5*time.Millisecond, func() error {
		conn, err := net.DialTimeout("tcp", "127.0.0.1:"+port, time.Second)
		if err == nil {
			conn.Close()
			return errors.New("port still open")
		}
		return nil
	})

	// Re-adding a reopens it, and its events flow on its new stream.
	again := startSource(t, gw, "a", `{endpoint: /a, port: "`+port+`", method: POST}`)
	waitActive(t, client, base+"/a")
	if code, body, _ := send(t, client, "POST", base+"/a", strings.NewReader(`"again"`)); code != 200 {
		t.Fatalf("re-added route answers %d (%s)", code, body)
	}
	if p := decodePayload(t, again.next(t)); string(p.Body) != `"again"` {
		t.Errorf("body = %s", p.Body)
	}
}

// A stream that does not read holds requests back; those it does not take within
// streamTimeout are answered 503, and every request answered 200 is an event on the stream.
func TestBackPressure(t *testing.T) {
	gw := testenv.StartGateway(t, newGateway("127.0.0.1"))
	client := newClient(t)
	port := freePort(t)
	url := "http://127.0.0.1:" + port + "/slow"
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	stream, err := gw.Client.StartEventSource(ctx, &gateways.EventSource{Name: "slow", Data: `{endpoint: /slow, port: "` + port + `", method: POST, streamTimeout: 300ms}`})
	if err != nil {
		t.Fatal(err)
	}
	waitActive(t, client, url)

	// 8 KiB bodies fill gRPC's flow-control window after a few events.
	const requests = 60
	body := `"` + strings.Repeat("x", 8<<10) + `"`
	var mu sync.Mutex
	answers := map[int]int{}
	retryAfter := true
	var wg sync.WaitGroup
	for range requests {
		wg.Go(func() {
			resp, err := client.Post(url, "application/json", strings.NewReader(body))
			if err != nil {
				t.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			mu.Lock()
			defer mu.Unlock()
			answers[resp.StatusCode]++
			if resp.StatusCode == 503 && resp.Header.Get("Retry-After") == "" {
				retryAfter = false
			}
		})
	}
	// Every request but the one being written when the window closed ends without the
	// stream being read: 200 for those in the window, 503 for the rest. Then reading
	// releases the last one.
	testenv.Eventually(t, 20*time.Second, 10*time.Millisecond, func() error {
		mu.Lock()
		defer mu.Unlock()
		if n := answers[200] + answers[503]; n < requests-1 {
			return fmt.Errorf("%d of %d requests answered", n, requests)
		}
		return nil
	})
	received := 0
	var readErr error
	readDone := make(chan struct{})
	sentinel := make(chan struct{})
	go func() {
		defer close(readDone)
		for {
			ev, err := stream.Recv()
			if err != nil {
				readErr = err
				return
			}
			if strings.Contains(string(ev.GetPayload()), "sentinel") {
				close(sentinel)
				return
			}
			received++
		}
	}()
	wg.Wait()
	// A last event after every other request was answered: when it arrives, everything
	// the stream took before it has arrived too.
	if code, _, _ := send(t, client, "POST", url, strings.NewReader(`"sentinel"`)); code != 200 {
		t.Fatalf("sentinel answered %d", code)
	}
	select {
	case <-readDone:
	case <-time.After(10 * time.Second):
		t.Fatal("sentinel not received")
	}
	select {
	case <-sentinel:
	default:
		t.Fatalf("stream ended before the sentinel: %v", readErr)
	}
	mu.Lock()
	defer mu.Unlock()
	if answers[200]+answers[503] != requests {
		t.Errorf("answers %v, want only 200 and 503", answers)
	}
	if answers[503] == 0 || !retryAfter {
		t.Errorf("answers %v (Retry-After on every 503: %v): back-pressure never timed out", answers, retryAfter)
	}
	t.Logf("answers %v, events received %d", answers, received)
	if received != answers[200] {
		t.Errorf("%d requests answered 200, %d events received", answers[200], received)
	}
}

// Requests waiting for the stream when it goes away are answered 503, not 200, and at once.
func TestStreamGoneWhileWaiting(t *testing.T) {
	g := newGateway("127.0.0.1")
	gw := testenv.StartGateway(t, g)
	client := newClient(t)
	port := freePort(t)
	url := "http://127.0.0.1:" + port + "/gone"
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	_, err := gw.Client.StartEventSource(ctx, &gateways.EventSource{Name: "gone", Data: `{endpoint: /gone, port: "` + port + `", method: POST, streamTimeout: 1m}`})
	if err != nil {
		t.Fatal(err)
	}
	waitActive(t, client, url)
	rt := activeRoute(t, g, port, "/gone", "POST")

	body := `"` + strings.Repeat("x", 8<<10) + `"`
	const requests = 30
	results := make(chan int, requests)
	for range requests {
		go func() {
			resp, err := client.Post(url, "application/json", strings.NewReader(body))
			if err != nil {
				results <- 0
				return
			}
			resp.Body.Close()
			results <- resp.StatusCode
		}()
	}
	// Those in the flow-control window come back 200; the rest wait for a minute-long
	// timeout, unless the stream goes away.
	got := map[int]int{}
	testenv.Eventually(t, 20*time.Second, 5*time.Millisecond, func() error {
		for len(results) > 0 {
			got[<-results]++
		}
		if waiting := int(rt.waiting.Load()); got[200] == 0 || got[200]+waiting != requests {
			return fmt.Errorf("answers %v, %d waiting for the stream", got, waiting)
		}
		return nil
	})
	cancel()
	deadline := time.After(10 * time.Second)
	for got[200]+got[503]+got[404]+got[0] < requests {
		select {
		case code := <-results:
			got[code]++
		case <-deadline:
			t.Fatalf("requests still waiting 10s after the stream went away: %v", got)
		}
	}
	if got[200]+got[503] != requests {
		t.Errorf("answers %v, want 503 for every request that was waiting", got)
	}
}

// activeRoute is the route the gateway serves for method and endpoint on port.
func activeRoute(t *testing.T, g gateway, port, endpoint, method string) *route {
	t.Helper()
	g.servers.mu.Lock()
	defer g.servers.mu.Unlock()
	for p, ps := range g.servers.byPort {
		if fmt.Sprint(p) == port {
			if rt := (*ps.table.Load())[endpoint][method]; rt != nil {
				return rt
			}
		}
	}
	t.Fatalf("no route %s %s on port %s", method, endpoint, port)
	return nil
}

// In the gateway-controller's pods gRPC binds loopback only (the gateway-client is in the
// same pod) and the webhook ports every interface. 127.0.0.2 stands in for the pod's own
// address: it is loopback on Linux, so "every interface" includes it.
func TestListenAddresses(t *testing.T) {
	grpcPort, webhookPort := freePort(t), freePort(t)
	proc := startProcess(t, "GATEWAY_SERVER_HOST=127.0.0.1", "GATEWAY_SOURCE_HOST=", "GATEWAY_SERVER_PORT="+grpcPort)

	conn, err := grpc.NewClient("127.0.0.1:"+grpcPort, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	testenv.Eventually(t, 20*time.Second, 20*time.Millisecond, func() error {
		if exited, err := proc.Exited(); exited {
			t.Fatalf("gateway exited: %v\n%s", err, proc.Output)
		}
		_, err := healthpb.NewHealthClient(conn).Check(t.Context(), &healthpb.HealthCheckRequest{})
		return err
	})
	gw := &testenv.Gateway{Addr: "127.0.0.1:" + grpcPort, Conn: conn, Client: gateways.NewEventingClient(conn)}
	es := startSource(t, gw, "push", `{endpoint: /push, port: "`+webhookPort+`", method: POST}`)

	t.Run("webhook answers on every interface", func(t *testing.T) {
		client := newClient(t)
		url := "http://127.0.0.2:" + webhookPort + "/push"
		waitActive(t, client, url)
		if code, body, _ := send(t, client, "POST", url, strings.NewReader(`{"via": "127.0.0.2"}`), "Content-Type", "application/json"); code != 200 {
			t.Fatalf("POST %s: %d %s", url, code, body)
		}
		if got := decodePayload(t, es.next(t)).Body; !bytes.Equal(got, []byte(`{"via": "127.0.0.2"}`)) {
			t.Errorf("body = %s", got)
		}
	})
	t.Run("gRPC refuses other addresses", func(t *testing.T) {
		c, err := net.DialTimeout("tcp", "127.0.0.2:"+grpcPort, 5*time.Second)
		if err == nil {
			c.Close()
			t.Fatalf("127.0.0.2:%s accepted a connection; gRPC must bind 127.0.0.1 only", grpcPort)
		}
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("dial 127.0.0.2:%s: %v, want connection refused", grpcPort, err)
		}
	})
	t.Run("gRPC answers on 127.0.0.1", func(t *testing.T) {
		resp, err := healthpb.NewHealthClient(conn).Check(t.Context(), &healthpb.HealthCheckRequest{})
		if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("health on 127.0.0.1:%s = %v, %v; want SERVING", grpcPort, resp.GetStatus(), err)
		}
	})
}

// Header values and text bodies are JSON strings as encoding/json writes them, except that
// <, > and & stay as they are: escaped (\u003c, 6 bytes for 1), a header of them made an
// event 6 times the size of its request, beyond what a gateway-client receives.
func TestJSONStrings(t *testing.T) {
	for _, s := range []string{
		"", "plain ASCII", `<a href="x">&amp;</a>`, "tab\t nl\n cr\r bs\\ q\" bell\x07 del\x7f \b\f \x00\x1f",
		"café ☃ 𝄞", "line\u2028paragraph\u2029", "not UTF-8 \xff\xfe, cut \xe2\x82",
	} {
		var want bytes.Buffer
		enc := json.NewEncoder(&want)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(s); err != nil {
			t.Fatal(err)
		}
		if got := appendJSONString([]byte("prefix:"), s); string(got) != "prefix:"+strings.TrimSuffix(want.String(), "\n") {
			t.Errorf("appendJSONString(%q) = %s, want prefix:%s", s, got, want.Bytes())
		}
	}
	header := strings.Repeat("<>&", 1000)
	p := encodePayload(http.Header{"X-Note": {header}}, []byte(`{}`))
	if want := `{"header":{"X-Note":["` + header + `"]},"body":{}}`; string(p) != want {
		t.Errorf("payload is %d bytes for a %d-byte header, want %s", len(p), len(header), want)
	}
}

// With idHeader, the event of a request that carries the header has its value as id (and
// ordering key): the events of a caller's retries share the id a sensor de-duplicates on.
// Without the header, or with a value that cannot be an id, the id is random.
func TestEventIDFromHeader(t *testing.T) {
	gw := testenv.StartGateway(t, newGateway("127.0.0.1"))
	client := newClient(t)
	port := freePort(t)
	url := "http://127.0.0.1:" + port + "/ids"
	es := startSource(t, gw, "ids", `{endpoint: /ids, port: "`+port+`", method: POST, idHeader: X-GitHub-Delivery}`)
	waitActive(t, client, url)

	const delivery = "72d3162e-cc78-11e3-81ab-4c9367dc0958"
	longest := strings.Repeat("d", maxIDLength)
	tests := []struct {
		name, value string // value: the header's, none when empty
		random      bool   // a random id, not the value
	}{
		{name: "delivery id", value: delivery},
		{name: "the caller's retry", value: delivery},
		{name: "no header", random: true},
		{name: "longest id", value: longest},
		{name: "longer than maxIDLength", value: longest + "d", random: true},
		{name: "not UTF-8", value: "id-\xff", random: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var header []string
			if tc.value != "" {
				header = []string{"X-Github-Delivery", tc.value}
			}
			if code, body, _ := send(t, client, "POST", url, strings.NewReader(`{}`), header...); code != 200 {
				t.Fatalf("status = %d (%s)", code, body)
			}
			ev := es.next(t)
			if ev.GetOrderingKey() != ev.GetId() {
				t.Errorf("ordering key %q, want the event's id %q", ev.GetOrderingKey(), ev.GetId())
			}
			switch {
			case tc.random && (ev.GetId() == "" || ev.GetId() == tc.value):
				t.Errorf("id %q, want a random id", ev.GetId())
			case !tc.random && ev.GetId() != tc.value:
				t.Errorf("id %q, want the header's %q", ev.GetId(), tc.value)
			}
		})
	}
}
