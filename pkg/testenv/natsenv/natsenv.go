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
	ns, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: port, NoLog: true, NoSigs: true})
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
	return ns.ClientURL()
}
