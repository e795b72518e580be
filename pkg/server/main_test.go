package server_test

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/eventgate/eventgate/pkg/server"
	"github.com/eventgate/eventgate/pkg/testenv"
	"github.com/eventgate/eventgate/protos/gateways"
)

// runAsGateway makes this test binary a gateway process when re-executed by a test below:
// Main is tested as a real process receiving real signals.
const runAsGateway = "EVENTGATE_TEST_RUN_AS_GATEWAY"

func TestMain(m *testing.M) {
	if os.Getenv(runAsGateway) == "1" {
		server.Main(&counterGateway{})
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func gatewayProcess(t *testing.T, env ...string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), append([]string{runAsGateway + "=1"}, env...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	return cmd, &stderr
}

func freePort(t *testing.T) int {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	return lis.Addr().(*net.TCPAddr).Port
}

func TestMainStopsGracefullyOnSIGTERM(t *testing.T) {
	port := freePort(t)
	cmd, stderr := gatewayProcess(t, server.EnvServerHost+"=127.0.0.1", server.EnvServerPort+"="+strconv.Itoa(port))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() { cmd.Process.Kill() })

	conn, err := grpc.NewClient(fmt.Sprintf("127.0.0.1:%d", port), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	testenv.Eventually(t, 20*time.Second, 20*time.Millisecond, func() error {
		resp, err := healthpb.NewHealthClient(conn).Check(t.Context(), &healthpb.HealthCheckRequest{})
		if err != nil {
			return err
		}
		if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			return fmt.Errorf("health %v", resp.GetStatus())
		}
		return nil
	})
	stream, err := gateways.NewEventingClient(conn).StartEventSource(t.Context(), &gateways.EventSource{Name: "one", Data: "count: 1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil {
		t.Fatal(err)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	_, err = stream.Recv()
	if st := status.Convert(err); st.Code() != codes.Unavailable {
		t.Errorf("open stream on SIGTERM ended with %v, want Unavailable", err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("gateway exited with %v after SIGTERM; stderr:\n%s", err, stderr)
		}
	case <-time.After(server.DefaultShutdownTimeout + 10*time.Second):
		t.Fatalf("gateway still running after SIGTERM; stderr:\n%s", stderr)
	}
}

func TestMainRejectsBadEnvironment(t *testing.T) {
	cmd, stderr := gatewayProcess(t, server.EnvServerPort+"=ninety", "LOG_LEVEL=info")
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("exit = %v, want status 1", err)
	}
	if !strings.Contains(stderr.String(), `GATEWAY_SERVER_PORT: "ninety" is not a port number`) {
		t.Errorf("stderr does not name the variable:\n%s", stderr)
	}
}

// A gateway server outside its client's pod serves gRPC over TLS and takes only clients
// with a certificate from the CA it is given.
func TestMainServesMutualTLS(t *testing.T) {
	ca := testenv.NewCA(t)
	srv, client := ca.ServerCert(t), ca.ClientCert(t, "gateway-client")
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cmd, stderr := gatewayProcess(t, server.EnvServerHost+"=127.0.0.1", server.EnvServerPort+"="+addr[len("127.0.0.1:"):],
		server.EnvServerTLSCertFile+"="+srv.CertPath, server.EnvServerTLSKeyFile+"="+srv.KeyPath,
		server.EnvServerTLSClientCAFile+"="+ca.Path)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("gateway stderr:\n%s", stderr)
		}
	})

	health := func(creds credentials.TransportCredentials) (healthpb.HealthCheckResponse_ServingStatus, error) {
		conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		resp, err := healthpb.NewHealthClient(conn).Check(t.Context(), &healthpb.HealthCheckRequest{})
		return resp.GetStatus(), err
	}
	mutual := credentials.NewTLS(&tls.Config{RootCAs: ca.Pool(), Certificates: []tls.Certificate{client.Certificate}})
	t.Run("client certificate: served", func(t *testing.T) {
		testenv.Eventually(t, 20*time.Second, 20*time.Millisecond, func() error {
			st, err := health(mutual)
			if err == nil && st != healthpb.HealthCheckResponse_SERVING {
				err = fmt.Errorf("health %v", st)
			}
			return err
		})
	})
	for _, tc := range []struct {
		name  string
		creds credentials.TransportCredentials
	}{
		{"no client certificate: refused", credentials.NewTLS(&tls.Config{RootCAs: ca.Pool()})},
		{"certificate from another CA: refused", credentials.NewTLS(&tls.Config{RootCAs: ca.Pool(), Certificates: []tls.Certificate{testenv.NewCA(t).ClientCert(t, "intruder").Certificate}})},
		{"plaintext: refused", insecure.NewCredentials()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, err := health(tc.creds)
			if status.Code(err) != codes.Unavailable {
				t.Fatalf("health = %v, %v; want Unavailable", st, err)
			}
			t.Logf("refused: %v", err)
		})
	}
}
