package testenv

import (
	"context"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/eventgate/eventgate/pkg/server"
	"github.com/eventgate/eventgate/protos/gateways"
)

// Gateway is a gateway server running in the test process on a loopback port.
type Gateway struct {
	Addr   string
	Conn   *grpc.ClientConn
	Client gateways.EventingClient
	// Stop stops the server gracefully and returns Serve's result; it is idempotent and
	// also runs at the end of the test.
	Stop func() error
}

// StartGateway serves gw on a random 127.0.0.1 port until the test ends and returns a
// client connected to it. Server logs go to the test log only with -v.
func StartGateway(t testing.TB, gw server.Gateway, opts ...server.Option) *Gateway {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen on loopback: %v", err)
	}
	return StartGatewayOn(t, lis, gw, opts...)
}

// StartGatewayOn is StartGateway on a listener of the test's, which may wrap the
// connections it accepts to watch what goes over them.
func StartGatewayOn(t testing.TB, lis net.Listener, gw server.Gateway, opts ...server.Option) *Gateway {
	t.Helper()
	opts = append([]server.Option{server.WithLogger(Logger(t)), server.WithShutdownTimeout(5 * time.Second)}, opts...)
	srv := server.New(gw, opts...)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, lis) }()

	var result error
	stopped := false
	stop := func() error {
		if !stopped {
			stopped = true
			cancel()
			result = <-served
		}
		return result
	}

	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		stop()
		t.Fatalf("dial gateway server: %v", err)
	}
	t.Cleanup(func() {
		conn.Close()
		if err := stop(); err != nil {
			t.Errorf("gateway server: %v", err)
		}
	})
	return &Gateway{Addr: lis.Addr().String(), Conn: conn, Client: gateways.NewEventingClient(conn), Stop: stop}
}

// Logger writes to the test log when the test runs with -v, and nowhere otherwise: logs
// help when debugging a test, and are noise when it passes. What is logged after the test
// ended (a server's goroutine still winding down) is dropped: the testing package panics
// on it.
func Logger(t testing.TB) *slog.Logger {
	if !testing.Verbose() {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return slog.New(slog.NewTextHandler(newTestWriter(t), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// testWriter writes lines to the test log until the test's cleanup.
type testWriter struct {
	t     testing.TB
	mu    sync.Mutex
	ended bool
}

func newTestWriter(t testing.TB) *testWriter {
	w := &testWriter{t: t}
	t.Cleanup(func() {
		w.mu.Lock()
		w.ended = true
		w.mu.Unlock()
	})
	return w
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.ended {
		w.t.Log(string(p[:len(p)-1]))
	}
	return len(p), nil
}
