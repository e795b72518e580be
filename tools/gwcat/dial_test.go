package main

import (
	"context"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/eventgate/eventgate/pkg/server"
	"github.com/eventgate/eventgate/pkg/testenv"
)

// A wrong address fails within --dial-timeout, naming the flag and the dial error.
func TestUnreachableServer(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close() // nothing listens there now: connections are refused
	for _, cmd := range [][]string{{"validate", "--data", "events: 1"}, {"start", "--data", "events: 1"}, {"health"}, {"list"}} {
		t.Run(cmd[0], func(t *testing.T) {
			began := time.Now()
			// Long enough for a first attempt to be refused on a loaded machine (under -race,
			// 300 ms was not always): the error must be that refusal, not the cut-off attempt.
			got := gwcat(t, "", append(cmd, "--addr", addr, "--dial-timeout", "1s")...)
			took := time.Since(began)
			want := fmt.Sprintf("gwcat %s: --addr %s: no gRPC server ready within --dial-timeout 1s: dial tcp %s: connect: connection refused\n", cmd[0], addr, addr)
			if got != (result{exitUsage, "", want}) {
				t.Errorf("gwcat %s = %+v, want exit 2 and stderr %q", cmd[0], got, want)
			}
			if took > 5*time.Second {
				t.Errorf("gwcat %s gave up after %s, want about --dial-timeout 1s", cmd[0], took)
			}
		})
	}
}

// gwcat waits for a server that is not ready yet, as grpc.WithBlock did: its first
// connection fails, a later one reaches the server.
func TestDialWaitsForTheServer(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	exit := make(chan result, 1)
	go func() { exit <- gwcat(t, "", "health", "--addr", lis.Addr().String(), "--dial-timeout", "20s") }()

	first, err := lis.Accept()
	if err != nil {
		t.Fatal(err)
	}
	first.Close() // no handshake: this attempt fails
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() {
		served <- server.New(&probeGateway{}, server.WithLogger(testenv.Logger(t))).Serve(ctx, lis)
	}()
	t.Cleanup(func() {
		stop()
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	select {
	case got := <-exit:
		if got != (result{exitOK, "SERVING\n", ""}) {
			t.Errorf("gwcat health = %+v, want SERVING", got)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("gwcat health did not reach the server")
	}
}

// An address where something accepts TCP but speaks no gRPC gets a hint, not a hang.
func TestNotAGRPCServer(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			conn, err := lis.Accept()
			if err != nil {
				return // the listener is closed: the test is over
			}
			conn.Close()
		}
	})
	t.Cleanup(func() { lis.Close(); wg.Wait() })
	addr := lis.Addr().String()
	got := gwcat(t, "", "validate", "--data", "events: 1", "--addr", addr, "--dial-timeout", "300ms")
	want := "gwcat validate: --addr " + addr + ": no gRPC server ready within --dial-timeout 300ms: it accepts TCP connections but no gRPC (HTTP/2, plaintext) handshake: is it a gateway server?\n"
	if got != (result{exitUsage, "", want}) {
		t.Errorf("gwcat validate = %+v, want exit 2 and stderr %q", got, want)
	}
}
