package testenv

import (
	"net"
	"net/http"
	"strconv"
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

// A restartable server's port is never one the kernel hands to outgoing connections, which
// could hold it while the server is down and keep it from coming back.
func TestFreePortIsOutsideTheEphemeralRange(t *testing.T) {
	low, high := ephemeralPorts()
	seen := map[string]bool{}
	for range 20 {
		addr := FreePort(t)
		_, p, _ := strings.Cut(addr, ":")
		port, err := strconv.Atoi(p)
		if err != nil {
			t.Fatalf("FreePort: %q", addr)
		}
		if port >= low && port <= high {
			t.Errorf("FreePort: %s is in the ephemeral range %d-%d", addr, low, high)
		}
		lis, err := net.Listen("tcp", addr)
		if err != nil {
			t.Errorf("FreePort: %s is not free: %v", addr, err)
			continue
		}
		lis.Close()
		seen[addr] = true
	}
	if len(seen) < 2 {
		t.Errorf("FreePort gave the same port each time: %v", seen)
	}
}
