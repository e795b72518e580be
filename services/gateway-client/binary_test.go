package main

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/eventgate/eventgate/pkg/testenv"
)

// TestBinariesLeaveOutRequestTracing checks that the client and the webhook gateway are
// built with testenv.BuildTags (under Bazel: .bazelrc's tags). Without grpcnotrace, gRPC
// links golang.org/x/net/trace and html/template with it, and each process carries about
// 2.5 MiB more of resident binary pages.
func TestBinariesLeaveOutRequestTracing(t *testing.T) {
	for _, pkg := range []string{"services/gateway-client", "services/gateways/webhook"} {
		bin := readBinary(t, pkg)
		for _, unwanted := range []string{"golang.org/x/net/trace", "html/template"} {
			if links(bin, unwanted) {
				t.Errorf("%s links %s: build it with -tags %s", pkg, unwanted, testenv.BuildTags)
			}
		}
	}
}

// TestClientLeavesOutCoreV1 checks that the client does not link k8s.io/api/core/v1: of a
// Gateway, only the controller reads the pod template and the Service, which the API keeps
// as raw JSON for that reason. Linked through typed fields, it was 1.2 MiB of the client's
// RSS under load.
func TestClientLeavesOutCoreV1(t *testing.T) {
	if links(readBinary(t, "services/gateway-client"), "k8s.io/api/core/v1") {
		t.Error("the gateway-client links k8s.io/api/core/v1")
	}
}

// readBinary reads the binary of pkg, built as it ships.
func readBinary(t *testing.T, pkg string) []byte {
	t.Helper()
	bin, err := os.ReadFile(testenv.Binary(t, pkg))
	if err != nil {
		t.Fatal(err)
	}
	// The function names of every linked package are in the binary's pclntab.
	if !links(bin, "google.golang.org/grpc") {
		t.Fatalf("%s: no gRPC function names in the binary; this check reads the wrong file", pkg)
	}
	return bin
}

// links reports whether bin holds a function name of the Go package pkg.
func links(bin []byte, pkg string) bool { return bytes.Contains(bin, []byte(pkg+".")) }

// TestBinariesRunOnOneProcUnlessGOMAXPROCSIsSet checks program.DefaultProcs in both kinds of
// process, through the GOMAXPROCS their start-up lines report: one without GOMAXPROCS in
// the environment, the environment's value with it.
func TestBinariesRunOnOneProcUnlessGOMAXPROCSIsSet(t *testing.T) {
	if os.Getenv("GOMAXPROCS") != "" {
		t.Skip("GOMAXPROCS is set for the tests, and so for the processes they start")
	}
	webhook := testenv.Binary(t, "services/gateways/webhook")
	for _, tc := range []struct {
		env  []string
		want string
	}{
		{nil, "goMaxProcs=1"},
		{[]string{"GOMAXPROCS=2"}, "goMaxProcs=2"},
	} {
		addr := testenv.FreePort(t)
		gw := testenv.StartGatewayOnPort(t, webhook, addr, tc.env...)
		client := testenv.StartClient(t, testenv.ClientConfig{GatewayType: "webhook", Servers: []string{addr},
			Sensors: []string{"http://127.0.0.1:1/"}, Env: tc.env})
		for name, out := range map[string]*testenv.SyncBuffer{"webhook gateway": gw.Output, "gateway-client": client.Output} {
			testenv.Eventually(t, 10*time.Second, 10*time.Millisecond, func() error {
				if !strings.Contains(out.String(), tc.want) {
					return fmt.Errorf("%s with environment %q: no %s in its start-up lines:\n%s", name, tc.env, tc.want, out)
				}
				return nil
			})
		}
	}
}
