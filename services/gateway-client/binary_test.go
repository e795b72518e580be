package main

import (
	"bytes"
	"os"
	"testing"

	"github.com/eventgate/eventgate/pkg/testenv"
)

// TestBinariesLeaveOutRequestTracing checks that the client and the webhook gateway are
// built with testenv.BuildTags (under Bazel: .bazelrc's tags). Without grpcnotrace, gRPC
// links golang.org/x/net/trace and html/template with it, and each process carries about
// 2.5 MiB more of resident binary pages.
func TestBinariesLeaveOutRequestTracing(t *testing.T) {
	for _, pkg := range []string{"services/gateway-client", "services/gateways/webhook"} {
		bin, err := os.ReadFile(testenv.Binary(t, pkg))
		if err != nil {
			t.Fatal(err)
		}
		// The function names of every linked package are in the binary's pclntab.
		if !bytes.Contains(bin, []byte("google.golang.org/grpc.")) {
			t.Fatalf("%s: no gRPC function names in the binary; this check reads the wrong file", pkg)
		}
		for _, unwanted := range []string{"golang.org/x/net/trace.", "html/template."} {
			if bytes.Contains(bin, []byte(unwanted)) {
				t.Errorf("%s links %s: build it with -tags %s", pkg, unwanted, testenv.BuildTags)
			}
		}
	}
}
