package testenv

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/eventgate/eventgate/pkg/sensorsink"
	"github.com/eventgate/eventgate/pkg/server"
)

// RestartableSensor is a sensor sink whose HTTP listener a fault test takes down and brings
// back on the same port, as a sensor pod that restarts: while it is down, connections are
// refused. The sink, and what it received, outlives the restarts.
type RestartableSensor struct {
	*sensorsink.Sink
	// URL is where to deliver events over HTTP, the same across restarts.
	URL string

	t    testing.TB
	addr string
	mu   sync.Mutex
	srv  *http.Server // nil while down
	done chan struct{}
}

// StartRestartableSensor serves a new sensor sink on a free loopback port until the test
// ends.
func StartRestartableSensor(t testing.TB, opts ...sensorsink.Option) *RestartableSensor {
	t.Helper()
	s := &RestartableSensor{
		Sink: sensorsink.New(append([]sensorsink.Option{sensorsink.WithLogger(Logger(t))}, opts...)...),
		t:    t,
		addr: FreePort(t),
	}
	s.URL = "http://" + s.addr + "/"
	s.Up()
	t.Cleanup(func() {
		s.Sink.Close()
		s.Down()
	})
	return s
}

// Down closes the listener and every connection, deliveries in progress included: their
// senders see a broken connection, as when the process dies. It is idempotent.
func (s *RestartableSensor) Down() {
	s.mu.Lock()
	srv, done := s.srv, s.done
	s.srv = nil
	s.mu.Unlock()
	if srv != nil {
		srv.Close()
		<-done
	}
}

// Up serves again on the same port, retrying the bind for a few seconds in case the
// kernel still holds it. It is idempotent.
func (s *RestartableSensor) Up() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil {
		return
	}
	lis, err := listenAgain(s.addr, 5*time.Second)
	if err != nil {
		s.t.Fatalf("sensor: %v", err)
	}
	srv := &http.Server{Handler: s.Sink, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(lis)
	}()
	s.srv, s.done = srv, done
}

// listenAgain binds addr, retrying until within: a port just closed may still be held.
func listenAgain(addr string, within time.Duration) (net.Listener, error) {
	deadline := time.Now().Add(within)
	for {
		lis, err := net.Listen("tcp", addr)
		if err == nil {
			return lis, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("listen again on %s: %w", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// StartGatewayOnPort runs a gateway server binary listening on addr (a 127.0.0.1 host:port,
// FreePort once, then the same again after a kill) and returns once it answers gRPC health
// checks. A fault test kills it and starts it again on the same address, so that the
// gateway-client finds it where it was.
func StartGatewayOnPort(t testing.TB, bin, addr string, env ...string) *Process {
	t.Helper()
	host, port, ok := strings.Cut(addr, ":")
	if !ok {
		t.Fatalf("gateway address %q: want host:port", addr)
	}
	vars := append([]string{server.EnvServerHost + "=" + host, server.EnvServerPort + "=" + port}, env...)
	proc := StartProcess(t, bin, nil, vars...)
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	Eventually(t, 30*time.Second, 20*time.Millisecond, func() error {
		if exited, err := proc.Exited(); exited {
			// The port of a killed predecessor may still be held for a moment.
			if strings.Contains(proc.Output.String(), "address already in use") {
				proc = StartProcess(t, bin, nil, vars...)
				return errors.New("port still in use: started again")
			}
			t.Fatalf("gateway exited: %v\n%s", err, proc.Output)
		}
		_, err := healthpb.NewHealthClient(conn).Check(t.Context(), &healthpb.HealthCheckRequest{})
		return err
	})
	return proc
}
