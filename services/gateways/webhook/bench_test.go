package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/eventgate/eventgate/pkg/testenv"
	"github.com/eventgate/eventgate/protos/gateways"
)

// benchBody is what the benchmarks post: a small GitHub-like webhook.
const benchBody = `{"action": "opened", "number": 1347, "sender": {"login": "octocat"}}`

// BenchmarkRequest posts from parallel clients to a bare net/http handler (the baseline,
// measured in the same run) and to a webhook route whose stream is read as fast as it
// comes: webhook's ns/op over bare's is the gateway's cost per request up to the stream.
// tools/bench measures the whole path, client and sensor included.
//
//	go test -run '^$' -bench Request -cpu 8 ./services/gateways/webhook/
func BenchmarkRequest(b *testing.B) {
	client := benchClient(b)
	b.Run("bare", func(b *testing.B) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			w.WriteHeader(http.StatusOK)
		}))
		defer srv.Close()
		postParallel(b, client, srv.URL+"/hook", nil)
	})
	b.Run("webhook", func(b *testing.B) {
		postParallel(b, client, startBenchRoute(b, client), nil)
	})
}

// benchClient keeps a connection per poster alive, as load generators do.
func benchClient(b *testing.B) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 256
	b.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// startBenchRoute starts a webhook gateway with a POST /hook route whose stream is read as
// fast as it comes (StartEventSource: no acknowledgements), and returns the route's URL once
// it answers. The stream ends with b.
func startBenchRoute(b *testing.B, client *http.Client) string {
	gw := testenv.StartGateway(b, newGateway("127.0.0.1"))
	port := freePort(b)
	ctx, cancel := context.WithCancel(context.Background())
	stream, err := gw.Client.StartEventSource(ctx, &gateways.EventSource{Name: "bench", Data: `{endpoint: /hook, port: "` + port + `", method: POST}`})
	if err != nil {
		cancel()
		b.Fatal(err)
	}
	drained := make(chan struct{})
	b.Cleanup(func() { cancel(); <-drained })
	go func() {
		defer close(drained)
		for {
			if _, err := stream.Recv(); err != nil {
				return
			}
		}
	}()
	url := "http://127.0.0.1:" + port + "/hook"
	testenv.Eventually(b, 10*time.Second, 5*time.Millisecond, func() error { return probe(client, url, http.StatusMethodNotAllowed) })
	return url
}

// postParallel posts benchBody with header to url from parallel clients for b.N requests,
// each to be answered 200.
func postParallel(b *testing.B, client *http.Client, url string, header http.Header) {
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(benchBody))
			if err != nil {
				b.Error(err)
				return
			}
			for k, v := range header {
				req.Header[k] = v
			}
			req.Header.Set("Content-Type", "application/json")
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
}

// BenchmarkEncodePayload is the payload of a typical webhook request: plain ASCII headers
// and a JSON body (ascii), and the same with header values that need escaping (escaped).
//
//	go test -run '^$' -bench EncodePayload ./services/gateways/webhook/
func BenchmarkEncodePayload(b *testing.B) {
	header := http.Header{
		"Content-Type":      {"application/json"},
		"User-Agent":        {"GitHub-Hookshot/044aadd"},
		"X-Github-Delivery": {"72d3162e-cc78-11e3-81ab-4c9367dc0958"},
		"X-Github-Event":    {"pull_request"},
		"X-Hub-Signature":   {"sha256=d57c68ca6f92289e6987922ff26938930f6e66a2d161ef06abdf1859230aa23c"},
	}
	escaped := header.Clone()
	escaped["X-Note"] = []string{"quote \" tab \t <html> & café \u2028"}
	for _, c := range []struct {
		name   string
		header http.Header
	}{{"ascii", header}, {"escaped", escaped}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				encodePayload(c.header, []byte(benchBody))
			}
		})
	}
}
