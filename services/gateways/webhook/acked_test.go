package main

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/eventgate/eventgate/pkg/testenv"
	"github.com/eventgate/eventgate/protos/gateways"
)

// answer is an HTTP response as a test sees it.
type answer struct {
	code       int
	body       string
	retryAfter string
	err        error
}

// post sends body to url in the background: the answer waits for the acknowledgement,
// which the test gives after it sees the event.
func post(client *http.Client, url, body string) <-chan answer {
	out := make(chan answer, 1)
	go func() {
		resp, err := client.Post(url, "application/json", strings.NewReader(body))
		if err != nil {
			out <- answer{err: err}
			return
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		out <- answer{code: resp.StatusCode, body: string(raw), retryAfter: resp.Header.Get("Retry-After")}
	}()
	return out
}

func await(t *testing.T, ch <-chan answer) answer {
	t.Helper()
	select {
	case a := <-ch:
		if a.err != nil {
			t.Fatal(a.err)
		}
		return a
	case <-time.After(20 * time.Second):
		t.Fatal("no HTTP answer within 20s")
	}
	return answer{}
}

// On a StreamEventSource call a request is answered only once the gateway-client
// acknowledged its event: 200 for delivered or dropped, 503 + Retry-After for retry, for
// no acknowledgement within streamTimeout, and for a call that ends first.
func TestAnswersAfterAcknowledgement(t *testing.T) {
	gw := testenv.StartGateway(t, newGateway("127.0.0.1"))
	client := newClient(t)
	port := freePort(t)
	url := "http://127.0.0.1:" + port + "/acked"
	s := testenv.OpenAckedStream(t, gw.Client, &gateways.EventSource{Name: "acked",
		Data: `{endpoint: /acked, port: "` + port + `", method: POST, streamTimeout: 500ms}`}, 4)
	waitActive(t, client, url)

	tests := []struct {
		name    string
		outcome gateways.Ack_Outcome // OUTCOME_UNSPECIFIED: never acknowledged
		code    int
		body    string
	}{
		{name: "delivered", outcome: gateways.Ack_OUTCOME_DELIVERED, code: http.StatusOK},
		{name: "dropped", outcome: gateways.Ack_OUTCOME_DROPPED, code: http.StatusOK},
		{name: "retry", outcome: gateways.Ack_OUTCOME_RETRY, code: http.StatusServiceUnavailable,
			body: "event not delivered, retry: the gateway-client could not deliver the event"},
		{name: "never acknowledged", code: http.StatusServiceUnavailable,
			body: "event not delivered, retry: no acknowledgement from the gateway-client within 500ms"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			answered := post(client, url, `{"case":"`+tc.name+`"}`)
			ev := s.Next(t, 10*time.Second)
			if p := decodePayload(t, ev); !strings.Contains(string(p.Body), tc.name) {
				t.Fatalf("event body %s, want case %q", p.Body, tc.name)
			}
			if tc.outcome == gateways.Ack_OUTCOME_UNSPECIFIED {
				a := await(t, answered)
				checkAnswer(t, a, tc.code, tc.body)
				// Late acknowledgements are still the client's to give: it frees the window.
				s.Ack(t, gateways.Ack_OUTCOME_DELIVERED, ev.GetSeq())
				return
			}
			// Not answered before the acknowledgement: the answer waits for it.
			select {
			case a := <-answered:
				t.Fatalf("answered %d %q before the acknowledgement", a.code, a.body)
			default:
			}
			s.Ack(t, tc.outcome, ev.GetSeq())
			checkAnswer(t, await(t, answered), tc.code, tc.body)
		})
	}

	t.Run("call ends first", func(t *testing.T) {
		answered := post(client, url, `{"case":"lost"}`)
		s.Next(t, 10*time.Second)
		s.Close()
		a := await(t, answered)
		if a.code != http.StatusServiceUnavailable || a.retryAfter == "" {
			t.Fatalf("answer %d %q (Retry-After %q), want 503 with Retry-After", a.code, a.body, a.retryAfter)
		}
	})
}

func checkAnswer(t *testing.T, a answer, code int, body string) {
	t.Helper()
	if a.code != code || !strings.HasPrefix(a.body, body) {
		t.Errorf("answer %d %q, want %d %q", a.code, a.body, code, body)
	}
	if code == http.StatusServiceUnavailable && a.retryAfter == "" {
		t.Errorf("503 without Retry-After")
	}
}

// A caller that half-closes its connection after its request, still reading, is answered
// 200 once its event is delivered: net/http cancels the request's context when it reads
// that EOF, and the answer must not be a 503 that makes the caller send the event again.
// A caller really gone looks the same; its request waits no longer than streamTimeout.
func TestHalfClosedCaller(t *testing.T) {
	g := newGateway("127.0.0.1")
	gw := testenv.StartGateway(t, g)
	client := newClient(t)
	port := freePort(t)
	url := "http://127.0.0.1:" + port + "/half"
	s := testenv.OpenAckedStream(t, gw.Client, &gateways.EventSource{Name: "half",
		Data: `{endpoint: /half, port: "` + port + `", method: POST, streamTimeout: 500ms}`}, 4)
	waitActive(t, client, url)
	rt := activeRoute(t, g, port, "/half", "POST")

	t.Run("half-closed", func(t *testing.T) {
		conn := postHalfClosed(t, port, "/half")
		ev := s.Next(t, 10*time.Second)
		// Acknowledged only after the server answered another request: by then it has
		// read the caller's EOF, which is what canceled the request's context, and the
		// answer must still be 200.
		if err := probe(client, url, http.StatusMethodNotAllowed); err != nil {
			t.Fatal(err)
		}
		s.Ack(t, gateways.Ack_OUTCOME_DELIVERED, ev.GetSeq())
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("delivered event answered %d, want 200", resp.StatusCode)
		}
	})
	t.Run("gone", func(t *testing.T) {
		conn := postHalfClosed(t, port, "/half")
		ev := s.Next(t, 10*time.Second)
		conn.Close()
		// Never acknowledged: the request ends with streamTimeout.
		testenv.Eventually(t, 3*time.Second, 5*time.Millisecond, func() error {
			if n := rt.waiting.Load(); n != 0 {
				return errors.New("a request of a caller gone is still waiting")
			}
			return nil
		})
		s.Ack(t, gateways.Ack_OUTCOME_DELIVERED, ev.GetSeq())
	})
}

// postHalfClosed posts {} to path on port with Connection: close, and closes the sending
// side of the connection, as some callers do once their request is out.
func postHalfClosed(t *testing.T, port, path string) *net.TCPConn {
	t.Helper()
	c, err := net.Dial("tcp", "127.0.0.1:"+port)
	if err != nil {
		t.Fatal(err)
	}
	conn := c.(*net.TCPConn)
	t.Cleanup(func() { conn.Close() })
	req := "POST " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	if err := conn.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	return conn
}
