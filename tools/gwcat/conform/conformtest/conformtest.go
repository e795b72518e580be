// Package conformtest runs the conformance kit from a Go test: against a gateway server at an
// address, every check must pass (or end as the test says it should).
package conformtest

import (
	"context"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/eventgate/eventgate/tools/gwcat/conform"
)

// Check runs the kit with opts against the gateway server at addr (opts.Conn and opts.Dial
// are set here) and fails the test for every check whose status is not Pass, or not what
// want gives for it. Acknowledged delivery is optional in the contract (a client falls
// back to StartEventSource), so acked-delivery may also warn unless want names it.
func Check(t *testing.T, addr string, opts conform.Options, want map[string]conform.Status) {
	t.Helper()
	dial := func(context.Context) (*grpc.ClientConn, error) {
		return grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	}
	conn, err := dial(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	opts.Conn, opts.Dial = conn, dial
	if err := conform.Preflight(t.Context(), opts); err != nil {
		t.Fatal(err)
	}
	for _, r := range conform.Run(t.Context(), opts) {
		w, ok := want[r.Check]
		if !ok {
			w = conform.Pass
		}
		optional := !ok && r.Check == conform.CheckAckedDelivery && r.Status == conform.Warn
		if r.Status != w && !optional {
			t.Errorf("%s (want %s)", r, w)
		} else {
			t.Log(r)
		}
	}
}
