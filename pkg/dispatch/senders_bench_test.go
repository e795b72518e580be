package dispatch

import (
	"compress/gzip"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
)

// BenchmarkHTTPSend compares, in one process against one loopback server that answers 200,
// the HTTP sender with the CloudEvents SDK client it replaced (the same binary-mode
// request): go test -bench HTTPSend -benchmem ./pkg/dispatch
func BenchmarkHTTPSend(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
	}))
	b.Cleanup(srv.Close)
	ev := benchEvent()

	b.Run("sdk-client", func(b *testing.B) {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		p, err := cehttp.New(cehttp.WithTarget(srv.URL), cehttp.WithRoundTripper(tr))
		if err != nil {
			b.Fatal(err)
		}
		c, err := cloudevents.NewClient(p)
		if err != nil {
			b.Fatal(err)
		}
		s := &ceSender{client: c, close: func() error { return nil }, target: srv.URL}
		benchSend(b, s, ev)
	})
	b.Run("sender", func(b *testing.B) {
		s := httpSenderTo(b, srv.URL)
		benchSend(b, s, ev)
	})
}

// benchEvent is a small webhook event, as the webhook gateway's payload wraps a body.
func benchEvent() cloudevents.Event {
	ev := cloudevents.NewEvent()
	ev.SetID("evt-1")
	ev.SetSource("webhook-gateway")
	ev.SetType("webhook")
	ev.SetData("application/json", []byte(`{"header":{},"body":{"n":1}}`))
	return ev
}

func benchSend(b *testing.B, s Sender, ev cloudevents.Event) {
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := s.Send(ctx, ev); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHTTPSendToCompressingSensor measures the sender against a sensor that gzips
// every answer its caller accepts gzip for, with a new compressor each time (Benthos's
// http_server does): as the sender is, which does not ask, and, as the baseline in the
// same process, with the transport's default of asking.
func BenchmarkHTTPSendToCompressingSensor(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if !strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
			return
		}
		w.Header().Set("Content-Encoding", "gzip")
		zw := gzip.NewWriter(w)
		zw.Close()
	}))
	b.Cleanup(srv.Close)
	ev := benchEvent()

	for _, accept := range []bool{false, true} {
		name := "sender"
		if accept {
			name = "accepting-gzip"
		}
		b.Run(name, func(b *testing.B) {
			s := httpSenderTo(b, srv.URL)
			s.(*httpSender).http.Transport.(*http.Transport).DisableCompression = !accept
			benchSend(b, s, ev)
		})
	}
}
