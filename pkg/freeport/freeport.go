// Package freeport picks loopback ports for servers that must be told their port before
// they start: a process's flags, a server stopped and started again on the same port.
package freeport

import (
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
)

// Addr returns a 127.0.0.1 address with a port that was free a moment ago. The port is
// outside the kernel's ephemeral range: between the pick and the server's listen (or its
// restart), the kernel may give any free ephemeral port to an outgoing connection of any
// process, as the local end of a connection to elsewhere, and the listen would fail.
func Addr() (string, error) {
	low, high := ephemeralPorts()
	// The ports just below the range, or, were there too few, those above it.
	from, to := max(low-20000, 10000), low
	if to-from < 1000 {
		from, to = high+1, 65536
	}
	if to-from >= 1000 {
		for range 100 {
			addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(from+rand.IntN(to-from)))
			if lis, err := net.Listen("tcp", addr); err == nil {
				lis.Close()
				return addr, nil
			}
		}
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer lis.Close()
	return lis.Addr().String(), nil
}

// ephemeralPorts is the kernel's range of local ports for outgoing connections (Linux's
// default if it cannot be read).
func ephemeralPorts() (low, high int) {
	low, high = 32768, 60999
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return low, high
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return low, high
	}
	l, err1 := strconv.Atoi(f[0])
	h, err2 := strconv.Atoi(f[1])
	if err1 != nil || err2 != nil || l < 1 || h < l || h > 65535 {
		return low, high
	}
	return l, h
}

// Port is the port of Addr, for servers given a port alone.
func Port() (int, error) {
	addr, err := Addr()
	if err != nil {
		return 0, err
	}
	_, port, _ := net.SplitHostPort(addr)
	return strconv.Atoi(port)
}
