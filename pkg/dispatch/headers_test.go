package dispatch

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"golang.org/x/net/http/httpguts"

	"github.com/eventgate/eventgate/pkg/sensorsink"
	"github.com/eventgate/eventgate/pkg/testenv"
)

// A refusal whose body spans lines (pretty-printed JSON, an nginx error page) goes into
// knativeerrordata, a header in binary mode: net/http refused the dead letter, which was
// retried for ever, and the event was never settled and held its key.
func TestMultiLineRefusalReachesTheDeadLetterSink(t *testing.T) {
	sensor, url := startScriptedSensor(t, map[string][]int{"evt-1": {http.StatusBadRequest}})
	sensor.body = "{\r\n  \"error\": \"no such order\"\n}"
	dls := testenv.StartSensor(t, sensorsink.Endpoints{})
	d, _ := policyDispatcher(t, url, dls.URL, Policy{}, Options{})
	o := newOutcomes()
	dispatchAll(t, d, Key{Source: "src"}, o, 1, 2)

	got := o.wait(t, 2)
	if got["evt-1"] != Dropped || got["evt-2"] != Delivered {
		t.Errorf("outcomes %v, want evt-1 dead-lettered (dropped), evt-2 delivered after it", got)
	}
	letters := deadLetters(t, dls, 1)
	checkDeadLetter(t, letters[0], url, http.StatusBadRequest, 1, "rejected")
	want := `{%0D%0A  "error": "no such order"%0A}`
	if data := fmt.Sprint(letters[0].Extensions()[ExtensionErrorData]); !strings.Contains(data, want) {
		t.Errorf("%s = %q, want the sensor's answer with its line breaks percent-encoded: %s", ExtensionErrorData, data, want)
	}
}

// Attribute values from upstream (broker headers, a tracestate) may hold control
// characters: the event is delivered with them percent-encoded in its ce-* header, and a
// plain tracestate that has one, invalid, is left out.
func TestControlCharactersInAttributesAreEscaped(t *testing.T) {
	var (
		mu  sync.Mutex
		got http.Header
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = r.Header.Clone()
		mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	s := httpSenderTo(t, srv.URL)
	ev := event(1)
	ev.SetExtension("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	ev.SetExtension("tracestate", "congo=t61\nrojo=00f067aa0ba902b7")
	ev.SetExtension("kafkaheader", "a\tb\x00c\x7f")
	ev.SetSubject("orders 100%")
	if err := s.Send(t.Context(), ev); err != nil {
		t.Fatalf("Send: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	for name, want := range map[string]string{
		"Ce-Tracestate":  "congo=t61%0Arojo=00f067aa0ba902b7",
		"Ce-Kafkaheader": "a\tb%00c%7F",
		"Ce-Subject":     "orders 100%", // sendable: left as the SDK writes it
		"Traceparent":    "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
		"Tracestate":     "",
	} {
		if v := got.Get(name); v != want {
			t.Errorf("%s: %q, want %q", name, v, want)
		}
	}
}

func TestEscapeControls(t *testing.T) {
	for in, want := range map[string]string{
		"":           "",
		"plain":      "plain",
		"a\r\nb":     "a%0D%0Ab",
		"\x01\x1f\t": "%01%1F\t",
		"é\n":        "é%0A",
	} {
		if got := escapeControls(in); got != want {
			t.Errorf("escapeControls(%q) = %q, want %q", in, got, want)
		}
		if !httpguts.ValidHeaderFieldValue(escapeControls(in)) {
			t.Errorf("escapeControls(%q) is not header-safe", in)
		}
	}
}
