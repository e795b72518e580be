package dispatch

import (
	"errors"
	"io"
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
	s, err := NewHTTPSender(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })

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
