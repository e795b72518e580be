package server_test

import (
	"bytes"
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
