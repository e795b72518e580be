package dispatch

import (
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	cloudevents "github.com/cloudevents/sdk-go/v2"
)

func TestHTTPSenderDoesNotAskForCompressedAnswers(t *testing.T) {
	var (
		mu        sync.Mutex
		encodings []string
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		encodings = append(encodings, r.Header.Get("Accept-Encoding"))
		mu.Unlock()
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, "data.n: not a string")
	}))
	t.Cleanup(srv.Close)
	s := httpSenderTo(t, srv.URL)

	// The refusal's body still reaches the error, which the dead-letter sink gets.
	refused := func(what string, err error) {
		t.Helper()
		var answer *AnswerError
		if !errors.As(err, &answer) || answer.Code != http.StatusBadRequest || !strings.Contains(err.Error(), "data.n: not a string") {
			t.Errorf("%s: error %v, want a 400 AnswerError with the sensor's reason", what, err)
		}
	}
	refused("Send", s.Send(t.Context(), event(1)))
	refused("SendBatch", s.(BatchSender).SendBatch(t.Context(), []cloudevents.Event{event(2), event(3)}))

	mu.Lock()
	defer mu.Unlock()
	if len(encodings) != 2 {
		t.Fatalf("the sensor got %d requests, want 2", len(encodings))
	}
	for i, enc := range encodings {
		if enc != "" {
			t.Errorf("request %d: Accept-Encoding %q, want none", i+1, enc)
		}
	}
}

// A 301, 302 or 303 to a POST is a refusal: followed, it would be a GET without the event,
// whose 200 would count as delivered an event no sensor got. A 307 or 308 repeats the
// POST, so it is followed, and the event is delivered where it points.
func TestHTTPSenderFollowsOnlyRedirectsThatKeepTheEvent(t *testing.T) {
	for _, tc := range []struct {
		code   int
		follow bool
	}{
		{http.StatusMovedPermanently, false},
		{http.StatusFound, false},
		{http.StatusSeeOther, false},
		{http.StatusTemporaryRedirect, true},
		{http.StatusPermanentRedirect, true},
	} {
		t.Run(http.StatusText(tc.code), func(t *testing.T) {
			var (
				mu     sync.Mutex
				landed []string // method and body of each request the redirect's target got
			)
			mux := http.NewServeMux()
			mux.HandleFunc("/sensor", func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, "/elsewhere", tc.code)
			})
			mux.HandleFunc("/elsewhere", func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				mu.Lock()
				landed = append(landed, r.Method+" "+string(body))
				mu.Unlock()
			})
			srv := httptest.NewServer(mux)
			t.Cleanup(srv.Close)
			s := httpSenderTo(t, srv.URL+"/sensor")

			for what, err := range map[string]error{
				"Send":      s.Send(t.Context(), event(1)),
				"SendBatch": s.(BatchSender).SendBatch(t.Context(), []cloudevents.Event{event(2), event(3)}),
			} {
				if tc.follow {
					if err != nil {
						t.Errorf("%s: %v", what, err)
					}
					continue
				}
				var answer *AnswerError
				if !errors.As(err, &answer) || answer.Code != tc.code {
					t.Errorf("%s: error %v, want a %d AnswerError", what, err, tc.code)
				}
				if Retryable(err) {
					t.Errorf("%s: the redirect is retryable; the sensor would be asked again for ever", what)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if !tc.follow {
				if len(landed) != 0 {
					t.Errorf("the redirect was followed: %q", landed)
				}
				return
			}
			if len(landed) != 2 {
				t.Fatalf("the redirect's target got %q, want the event and the batch", landed)
			}
			for _, l := range landed {
				if !strings.HasPrefix(l, "POST ") || len(l) == len("POST ") {
					t.Errorf("the redirect's target got %q, want a POST with the event", l)
				}
			}
		})
	}
}

// More deliveries in flight than net/http's default cap of 100 idle connections (for all
// hosts) still reuse their connections: a second burst as wide as the first dials none (or
// next to none: a connection goes back to the pool just after its answer was read).
func TestHTTPSenderReusesConnectionsAboveAHundred(t *testing.T) {
	const inFlight = 150
	var (
		mu      sync.Mutex
		dialled int
		arrived int
		release = make(chan struct{})
	)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		arrived++
		wait := release
		if arrived%inFlight == 0 {
			close(release)
			release = make(chan struct{})
		}
		mu.Unlock()
		<-wait // every request of a burst is in flight at once
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			mu.Lock()
			dialled++
			mu.Unlock()
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	s := httpSenderTo(t, srv.URL)

	burst := func() int {
		mu.Lock()
		before := dialled
		mu.Unlock()
		var wg sync.WaitGroup
		for i := range inFlight {
			wg.Go(func() {
				if err := s.Send(t.Context(), event(i)); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		return dialled - before
	}
	if n := burst(); n != inFlight {
		t.Fatalf("first burst dialled %d connections, want %d", n, inFlight)
	}
	if n := burst(); n > inFlight/10 {
		t.Errorf("second burst dialled %d connections, want next to none: the first burst's were not kept idle", n)
	}
}

// httpSenderTo is an HTTP sender to url, closed when the test ends.
func httpSenderTo(t testing.TB, url string) Sender {
	t.Helper()
	s, err := NewHTTPSender(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
