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

// BenchmarkRequest posts from parallel clients to a bare net/http handler (the baseline,
// measured in the same run) and to a webhook route whose stream is read as fast as it
// comes: webhook's ns/op over bare's is the gateway's cost per request up to the stream.
// tools/bench measures the whole path, client and sensor included.
//
//	go test -run '^$' -bench Request -cpu 8 ./services/gateways/webhook/
func BenchmarkRequest(b *testing.B) {
	body := `{"action": "opened", "number": 1347, "sender": {"login": "octocat"}}`
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 256
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	b.Cleanup(tr.CloseIdleConnections)

	run := func(b *testing.B, url string) {
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				resp, err := client.Post(url, "application/json", strings.NewReader(body))
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

	b.Run("bare", func(b *testing.B) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			w.WriteHeader(http.StatusOK)
		}))
		defer srv.Close()
		run(b, srv.URL+"/hook")
	})

	b.Run("webhook", func(b *testing.B) {
		gw := testenv.StartGateway(b, newGateway("127.0.0.1"))
		port := freePort(b)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		stream, err := gw.Client.StartEventSource(ctx, &gateways.EventSource{Name: "bench", Data: `{endpoint: /hook, port: "` + port + `", method: POST}`})
		if err != nil {
			b.Fatal(err)
		}
		drained := make(chan struct{})
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
		run(b, url)
		cancel()
		<-drained
	})
}
