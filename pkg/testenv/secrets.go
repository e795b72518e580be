package testenv

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/eventgate/eventgate/pkg/server"
	"github.com/eventgate/eventgate/protos/gateways"
)

// SecretsDir is a folder laid out as pkg/secret reads $GATEWAY_SECRETS_DIR: one folder per
// Secret, one file per key, as a mounted secret volume.
type SecretsDir string

// NewSecretsDir is an empty folder of secrets that lives as long as the test.
func NewSecretsDir(t testing.TB) SecretsDir {
	t.Helper()
	return SecretsDir(t.TempDir())
}

// Put writes the key of Secret name. The file appears whole (written aside, then renamed),
// as the kubelet swaps a volume's files, so a source never reads half a value.
func (d SecretsDir) Put(t testing.TB, name, key, value string) {
	t.Helper()
	dir := filepath.Join(string(d), name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(dir, "."+key+".tmp")
	if err := os.WriteFile(tmp, []byte(value), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, key)); err != nil {
		t.Fatal(err)
	}
}

// CaptureLogs is a server option that logs everything, debug included, into the returned
// buffer (and to the test log with -v): for tests that check what a server says, such as
// that no secret's value ever appears.
func CaptureLogs(t testing.TB) (*SyncBuffer, server.Option) {
	buf := &SyncBuffer{}
	var w io.Writer = buf
	if testing.Verbose() {
		w = io.MultiWriter(buf, newTestWriter(t))
	}
	return buf, server.WithLogger(slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug})))
}

// WaitLogged waits until logs hold want at least n times, failing the test after timeout.
func WaitLogged(t testing.TB, logs *SyncBuffer, want string, n int, timeout time.Duration) {
	t.Helper()
	Eventually(t, timeout, 10*time.Millisecond, func() error {
		if got := strings.Count(logs.String(), want); got < n {
			return fmt.Errorf("logged %d times, want %d: %q", got, n, want)
		}
		return nil
	})
}

// ExpectNotShown fails the test if any of secrets appears in text, which names what it is
// (the log of a run, a stream's error).
func ExpectNotShown(t testing.TB, what, text string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if s != "" && strings.Contains(text, s) {
			t.Errorf("%s shows the secret value %q:\n%s", what, s, text)
		}
	}
}

// StartGatewayProcess runs a gateway server process (bin, with env added to this process's
// environment) on a free 127.0.0.1 port until the test ends, and returns a client once its
// gRPC health check answers.
func StartGatewayProcess(t testing.TB, bin string, args []string, env ...string) (*Gateway, *Process) {
	t.Helper()
	addr := FreePort(t)
	_, port, _ := strings.Cut(addr, ":")
	proc := StartProcess(t, bin, args, append([]string{server.EnvServerHost + "=127.0.0.1", server.EnvServerPort + "=" + port}, env...)...)
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	Eventually(t, 30*time.Second, 20*time.Millisecond, func() error {
		if exited, err := proc.Exited(); exited {
			t.Fatalf("gateway exited: %v\n%s", err, proc.Output)
		}
		_, err := healthpb.NewHealthClient(conn).Check(t.Context(), &healthpb.HealthCheckRequest{})
		return err
	})
	stop := func() error { return proc.Stop(10 * time.Second) }
	return &Gateway{Addr: addr, Conn: conn, Client: gateways.NewEventingClient(conn), Stop: stop}, proc
}

// Err is the error that ended the stream, nil while it runs.
func (s *Stream) Err() error {
	select {
	case <-s.ended:
		return s.err
	default:
		return nil
	}
}

// Ended is closed once the stream has ended.
func (s *Stream) Ended() <-chan struct{} { return s.ended }
