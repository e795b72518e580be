package freeport

import (
	"net"
	"strconv"
	"strings"
	"testing"
)

// A restartable server's port is never one the kernel hands to outgoing connections, which
// could hold it while the server is down and keep it from coming back.
func TestAddrIsOutsideTheEphemeralRange(t *testing.T) {
	low, high := ephemeralPorts()
	seen := map[string]bool{}
	for range 20 {
		addr, err := Addr()
		if err != nil {
			t.Fatal(err)
		}
		_, p, _ := strings.Cut(addr, ":")
		port, err := strconv.Atoi(p)
		if err != nil {
			t.Fatalf("Addr: %q", addr)
		}
		if port >= low && port <= high {
			t.Errorf("Addr: %s is in the ephemeral range %d-%d", addr, low, high)
		}
		lis, err := net.Listen("tcp", addr)
		if err != nil {
			t.Errorf("Addr: %s is not free: %v", addr, err)
			continue
		}
		lis.Close()
		seen[addr] = true
	}
	if len(seen) < 2 {
		t.Errorf("Addr gave the same port each time: %v", seen)
	}
}
