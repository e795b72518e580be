package main

import (
	"strings"
	"testing"

	"github.com/eventgate/eventgate/pkg/testenv"
)

func TestHealthAndList(t *testing.T) {
	gw := testenv.StartGateway(t, &probeGateway{})
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout string
	}{
		{"server", []string{"health"}, exitOK, "SERVING\n"},
		{"Eventing", []string{"health", "--service", "gateways.Eventing"}, exitOK, "SERVING\n"},
		{"unknown service", []string{"health", "--service", "nope.Nope"}, exitFailed, "SERVICE_UNKNOWN\n"},
		{"list", []string{"list"}, exitOK, "gateways.Eventing\ngrpc.health.v1.Health\ngrpc.reflection.v1.ServerReflection\ngrpc.reflection.v1alpha.ServerReflection\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := gwcat(t, "", append(tc.args, "--addr", gw.Addr)...)
			if got != (result{tc.code, tc.stdout, ""}) {
				t.Errorf("gwcat %s = %+v, want exit %d and stdout %q", strings.Join(tc.args, " "), got, tc.code, tc.stdout)
			}
		})
	}
}

func TestAddrFromEnv(t *testing.T) {
	gw := testenv.StartGateway(t, &probeGateway{})
	t.Setenv("GWCAT_ADDR", gw.Addr)
	if got := gwcat(t, "", "health"); got != (result{exitOK, "SERVING\n", ""}) {
		t.Errorf("gwcat health with GWCAT_ADDR = %+v", got)
	}
}
