// Package natsenv runs an embedded NATS server for tests. It is apart from testenv so that
// only the tests that need NATS compile nats-server.
package natsenv

import (
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
)

// Start runs a NATS server in-process on 127.0.0.1:port (-1: a free port) until the test
// ends, and returns its client URL once it accepts connections.
func Start(t testing.TB, port int) string {
	t.Helper()
	return StartServer(t, &natsserver.Options{Port: port}).ClientURL()
}

// StartServer runs a NATS server with opts (on 127.0.0.1 unless opts.Host says otherwise,
// without logs or signal handlers) until the test ends, and returns it once it accepts
// connections. Tests that restart the broker call Shutdown on it and start another on the
// same port; tests of authentication set opts.Username/Password or Authorization.
func StartServer(t testing.TB, opts *natsserver.Options) *natsserver.Server {
	t.Helper()
	o := *opts
	if o.Host == "" {
		o.Host = "127.0.0.1"
	}
	o.NoLog, o.NoSigs = true, true
	ns, err := natsserver.NewServer(&o)
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	t.Cleanup(func() {
		ns.Shutdown()
		ns.WaitForShutdown()
	})
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("NATS server not ready within 10s")
	}
	return ns
}

// StartJetStream runs a NATS server with JetStream enabled, storing its streams in storeDir
// (a test's t.TempDir(); a restarted server given the same folder and port finds its
// streams and consumers again), on 127.0.0.1:port (-1: a free port).
func StartJetStream(t testing.TB, port int, storeDir string) *natsserver.Server {
	t.Helper()
	return StartServer(t, &natsserver.Options{Port: port, JetStream: true, StoreDir: storeDir})
}
