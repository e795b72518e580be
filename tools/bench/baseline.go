package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"
)

// The baselines run as processes of their own, like the gateway: the bench starts its own
// binary again with -serve, so that they do not share the posters' CPU and heap.

// serveBaseline runs the baseline kind ("bare" or "relay") on addr until SIGTERM.
func serveBaseline(kind, addr, sinkURL string) error {
	var h http.Handler
	switch kind {
	case "bare":
		h = http.HandlerFunc(bare)
	case "relay":
		h = newRelay(sinkURL)
	default:
		return fmt.Errorf("-serve: %q is not bare or relay", kind)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	srv := &http.Server{Addr: addr, Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	if err := srv.ListenAndServe(); err != http.ErrServerClosed {
		return err
	}
	return nil
}

// bare is the one-hop ceiling: read the request, answer 200.
func bare(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	w.WriteHeader(http.StatusOK)
}

// relay is the two-hop ceiling of any design that delivers each event with its own HTTP
// request: read the body, POST it to the sink as a binary-mode CloudEvent, then answer.
type relay struct {
	sink   string
	client *http.Client
	next   atomic.Int64
}

func newRelay(sink string) *relay {
	// As many idle connections as posters can keep busy: reuse, not a dial per event.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 1024
	return &relay{sink: sink, client: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
}

func (rl *relay) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	req, err := http.NewRequestWithContext(r.Context(), http.MethodPost, rl.sink, bytes.NewReader(body))
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Ce-Specversion", "1.0")
	req.Header.Set("Ce-Id", strconv.FormatInt(rl.next.Add(1), 10))
	req.Header.Set("Ce-Source", "relay")
	req.Header.Set("Ce-Type", "relay")
	resp, err := rl.client.Do(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		http.Error(w, "sink answered "+resp.Status, http.StatusBadGateway)
		return
	}
	w.WriteHeader(http.StatusOK)
}
