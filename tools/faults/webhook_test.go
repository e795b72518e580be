package faults

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/eventgate/eventgate/pkg/testenv"
)

// webhookSystem: callers POST each event and retry until they get a 200, after the
// Retry-After pause when there is one, as the README tells them to; a 200 is the
// acknowledgement. There is no broker to restart.
func webhookSystem(t *testing.T, l *ledger) *system {
	_, port, _ := net.SplitHostPort(testenv.FreePort(t))
	url := "http://127.0.0.1:" + port + "/faults"
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	t.Cleanup(client.CloseIdleConnections)
	// Callers waiting at once are bounded, as a real caller's pool is: while the path is
	// held up, the load waits too.
	callers := make(chan struct{}, 1000)
	var calls sync.WaitGroup
	call := func(ctx context.Context, m mark) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(m.body()))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			wait, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
			return &statusError{code: resp.StatusCode, wait: time.Duration(wait) * time.Second}
		}
		l.ack(m)
		return nil
	}
	return &system{
		gatewayType: "webhook",
		source:      `{endpoint: /faults, port: "` + port + `", method: POST}`,
		streams:     []string{"callers"},
		send: func(ctx context.Context, evs []mark) {
			for _, m := range evs {
				select {
				case callers <- struct{}{}:
				case <-ctx.Done():
					return
				}
				calls.Add(1)
				go func() {
					defer func() { <-callers; calls.Done() }()
					retry(ctx, func() error { return call(ctx, m) })
				}()
			}
		},
		wait:        calls.Wait,
		brokerFault: "none (no broker)",
		// Each 200 came after the sensors took the event: nothing is held upstream.
		drained: func() error { return nil },
	}
}

// statusError is a refusal, with the pause the gateway asked for (Retry-After).
type statusError struct {
	code int
	wait time.Duration
}

func (e *statusError) Error() string { return http.StatusText(e.code) }

func (e *statusError) retryAfter() time.Duration { return e.wait }
