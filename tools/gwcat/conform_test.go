package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/eventgate/eventgate/pkg/testenv"
	"github.com/eventgate/eventgate/tools/gwcat/conform"
)

func TestConform(t *testing.T) {
	gw := testenv.StartGateway(t, &probeGateway{})
	marks := filepath.Join(t.TempDir(), "triggered")
	got := gwcat(t, "", "conform", "--addr", gw.Addr, "--valid", "events: 1000000", "--invalid", "events: -1",
		"--timeout", "10s", "--stall", "300ms", "--name", "cli", "--trigger", `echo "$GWCAT_SOURCE $GWCAT_DATA" >> `+marks)
	out := lines(got.stdout)
	if got.code != exitOK || got.stderr != "" || len(out) != len(conform.Checks)+1 {
		t.Fatalf("gwcat conform = %+v, want exit 0 and a line per check and a summary", got)
	}
	for i, check := range conform.Checks {
		if !strings.HasPrefix(out[i], "PASS "+check+": ") {
			t.Errorf("line %d = %q, want PASS %s", i, out[i], check)
		}
	}
	if want := fmt.Sprintf("CONFORMING %s: %d passed, 0 warned, 0 failed", gw.Addr, len(conform.Checks)); out[len(out)-1] != want {
		t.Errorf("summary = %q, want %q", out[len(out)-1], want)
	}
	// Which of the kit's sources (cli, cli-a, cli-restart, ...) the trigger ran for depends on
	// timing: the probe gateway emits by itself too. Every run must have had both variables.
	triggered, err := os.ReadFile(marks)
	runs := lines(string(triggered))
	if err != nil || len(runs) == 0 {
		t.Fatalf("--trigger never ran (%v)", err)
	}
	for _, run := range runs {
		if !strings.HasPrefix(run, "cli") || !strings.HasSuffix(run, " events: 1000000") {
			t.Errorf("--trigger ran with %q, want GWCAT_SOURCE (cli...) and GWCAT_DATA set", run)
		}
	}
}

// A failing check is exit 1, after every line.
func TestConformFails(t *testing.T) {
	gw := testenv.StartGateway(t, &probeGateway{})
	// Valid, but its stream ends at once: no event for the kit.
	got := gwcat(t, "", "conform", "--addr", gw.Addr, "--valid", "end: true", "--invalid", "events: -1", "--timeout", "1s", "--stall", "100ms")
	out := lines(got.stdout)
	if got.code != exitFailed || len(out) != len(conform.Checks)+1 || !strings.HasPrefix(out[len(out)-1], "NOT CONFORMING "+gw.Addr+": ") {
		t.Fatalf("gwcat conform = %+v, want exit 1 and NOT CONFORMING", got)
	}
	if want := `FAIL start-valid: StartEventSource(--valid): the server ended the stream (OK status)`; !strings.HasPrefix(out[2], want) {
		t.Errorf("line 3 = %q, want %q", out[2], want)
	}
}

// No gateway at --addr is one line and exit 2, within the deadlines.
func TestConformNoGateway(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	healthpb.RegisterHealthServer(srv, health.NewServer())
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	nothing := testenv.FreePort(t)

	tests := []struct {
		name, addr, stderr string
	}{
		{"nothing listens", nothing, "gwcat conform: --addr " + nothing + ": no gRPC server ready within --dial-timeout 1s: dial tcp " + nothing + ": connect: connection refused\n"},
		{"health only", lis.Addr().String(), "gwcat conform: --addr " + lis.Addr().String() + ": not a gateway server: it does not serve gateways.Eventing (unknown service gateways.Eventing)\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := gwcat(t, "", "conform", "--addr", tc.addr, "--valid", "events: 1", "--invalid", "events: -1", "--dial-timeout", "1s", "--timeout", "1s")
			if got != (result{exitUsage, "", tc.stderr}) {
				t.Errorf("gwcat conform = %+v, want exit 2 and stderr %q", got, tc.stderr)
			}
		})
	}
}

func TestConformUsage(t *testing.T) {
	got := gwcat(t, "", "conform", "--valid", "events: 1")
	if got.code != exitUsage || !strings.Contains(got.stderr, "--valid and --invalid are required") {
		t.Errorf("gwcat conform without --invalid = %+v, want exit 2", got)
	}
}
