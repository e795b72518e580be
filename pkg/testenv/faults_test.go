package testenv

import (
	"net/http"
	"strings"
	"testing"
)

// A sensor taken down refuses connections; brought back, the same URL answers and the
// sink still holds what it took before.
func TestRestartableSensor(t *testing.T) {
	s := StartRestartableSensor(t)
	post := func() (int, error) {
		req, err := http.NewRequest(http.MethodPost, s.URL, strings.NewReader(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		for k, v := range map[string]string{"Ce-Specversion": "1.0", "Ce-Id": "1", "Ce-Source": "test", "Ce-Type": "test"} {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	for i, step := range []struct {
		do       func()
		wantUp   bool
		received int
	}{
		{do: func() {}, wantUp: true, received: 1},
		{do: s.Down, wantUp: false, received: 1},
		{do: s.Down, wantUp: false, received: 1}, // idempotent
		{do: s.Up, wantUp: true, received: 2},
		{do: s.Up, wantUp: true, received: 3},
	} {
		step.do()
		code, err := post()
		if up := err == nil && code == http.StatusOK; up != step.wantUp {
			t.Fatalf("step %d: delivery answered %d, %v; want up %v", i, code, err, step.wantUp)
		}
		if n := len(s.Received()); n != step.received {
			t.Fatalf("step %d: sink holds %d events, want %d", i, n, step.received)
		}
	}
}
