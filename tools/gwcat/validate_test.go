package main

import (
	"testing"

	"github.com/eventgate/eventgate/pkg/testenv"
)

func TestValidate(t *testing.T) {
	gw := testenv.StartGateway(t, &probeGateway{})
	tests := []struct {
		name, data     string
		code           int
		stdout, stderr string
	}{
		{name: "valid", data: "events: 3", code: exitOK, stdout: "valid\n"},
		{name: "invalid value", data: "events: -1", code: exitFailed, stdout: "invalid: probe.events: must not be negative, got -1\n"},
		{name: "unknown field", data: "evnets: 3", code: exitFailed, stdout: "invalid: probe: invalid configuration: unknown field \"evnets\"\n"},
		{name: "empty", data: "  \n", code: exitFailed, stdout: "invalid: probe: configuration is empty\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := gwcat(t, "", "validate", "--addr", gw.Addr, "--data", tc.data)
			if got != (result{tc.code, tc.stdout, tc.stderr}) {
				t.Errorf("gwcat validate --data %q = %+v, want exit %d, stdout %q, stderr %q", tc.data, got, tc.code, tc.stdout, tc.stderr)
			}
		})
	}
}
