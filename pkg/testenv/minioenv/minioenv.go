// Package minioenv runs a real MinIO server for tests on random loopback ports: one shared
// per test process (Shared), or a private one a test may kill and restart (Start).
//
// The binary comes from tools/testservers/build.sh, built with third_party/minio's listen
// fix (EVENTGATE_MINIO wins over its cache folder). Without it a test skips with a loud
// message, and fails when EVENTGATE_REQUIRE_TEST_SERVERS=1, as the README's test command sets it.
package minioenv

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/eventgate/eventgate/pkg/freeport"
	"github.com/eventgate/eventgate/pkg/testenv/kubeenv"
)

// The root credentials of every test server.
const (
	AccessKey = "minioenv-access-key-4f1c"
	SecretKey = "minioenv-secret-key-9b2e7d"
)

// Server is a running MinIO.
type Server struct {
	// Endpoint is host:port, as minio-go takes it (plain HTTP).
	Endpoint string

	bin, dir string
	console  int
	mu       sync.Mutex
	cmd      *exec.Cmd
	exited   chan struct{}
}

var (
	once     sync.Once
	shared   *Server
	startErr error
)

// Binary is the MinIO server to run, or "" after ending t (skip, or fail when test servers
// are required).
func Binary(t testing.TB) string {
	t.Helper()
	bin := kubeenv.Find("EVENTGATE_MINIO", kubeenv.Executable, "minio-v*/minio")
	if bin == "" {
		kubeenv.Missing(t, "MinIO for the artifact gateway's tests", "not found (EVENTGATE_MINIO, "+kubeenv.CacheDir()+"/minio-v*/)")
	}
	return bin
}

// Shared starts a MinIO on first use and returns it; it runs until Run's end (or the test
// process ends).
func Shared(t testing.TB) *Server {
	t.Helper()
	bin := Binary(t)
	once.Do(func() {
		dir, err := os.MkdirTemp("", "minioenv-")
		if err != nil {
			startErr = err
			return
		}
		shared, startErr = start(bin, dir)
	})
	if startErr != nil {
		t.Fatalf("minio: %v", startErr)
	}
	return shared
}

// Run runs the tests of a package and stops the shared server after them:
//
//	func TestMain(m *testing.M) { os.Exit(minioenv.Run(m)) }
func Run(m *testing.M) int {
	code := m.Run()
	if shared != nil {
		shared.Kill()
		os.RemoveAll(shared.dir)
	}
	return code
}

// Start starts a MinIO of the test's own, stopped at the test's end.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := Binary(t)
	s, err := start(bin, t.TempDir())
	if err != nil {
		t.Fatalf("minio: %v", err)
	}
	t.Cleanup(s.Kill)
	return s
}

func start(bin, dir string) (*Server, error) {
	port, err := freeport.Port()
	if err != nil {
		return nil, err
	}
	console, err := freeport.Port()
	if err != nil {
		return nil, err
	}
	s := &Server{Endpoint: "127.0.0.1:" + strconv.Itoa(port), bin: bin, dir: dir, console: console}
	return s, s.run()
}

// run starts the server on its address and data and waits until it is ready.
func (s *Server) run() error {
	logFile, err := os.OpenFile(filepath.Join(s.dir, "minio.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logFile.Close()
	cmd := exec.Command(s.bin, "server", filepath.Join(s.dir, "data"),
		"--address", s.Endpoint, "--console-address", "127.0.0.1:"+strconv.Itoa(s.console), "--quiet")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Env = append(os.Environ(),
		"MINIO_ROOT_USER="+AccessKey, "MINIO_ROOT_PASSWORD="+SecretKey,
		"MINIO_UPDATE=off", "MINIO_BROWSER=off")
	// The server dies with the test process even if no cleanup runs.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", s.bin, err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	s.mu.Lock()
	s.cmd, s.exited = cmd, exited
	s.mu.Unlock()
	return s.waitReady(exited, 60*time.Second)
}

// waitReady polls the liveness endpoint, then makes (and removes) a bucket: MinIO answers
// live before it accepts bucket operations.
func (s *Server) waitReady(exited chan struct{}, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	client := s.newClient()
	probe := "minioenv-ready-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	var last error
	for {
		if last = client.MakeBucket(ctx, probe, minio.MakeBucketOptions{}); last == nil {
			return client.RemoveBucket(ctx, probe)
		}
		select {
		case <-exited:
			return fmt.Errorf("minio exited while starting:\n%s", s.logTail())
		case <-ctx.Done():
			return fmt.Errorf("minio not ready after %s (%v):\n%s", limit, last, s.logTail())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (s *Server) logTail() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "minio.log"))
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// Kill ends the server with SIGKILL, as a crash would, and waits until it is gone.
func (s *Server) Kill() { s.end(syscall.SIGKILL) }

// Stop ends the server with SIGTERM, as a rolling update would: it closes its connections
// itself. It waits until the server is gone.
func (s *Server) Stop() { s.end(syscall.SIGTERM) }

func (s *Server) end(sig syscall.Signal) {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Signal(sig)
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		<-exited
	}
}

// Restart starts the server again, on the same port and data, after Kill or Stop.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	if err := s.run(); err != nil {
		t.Fatalf("minio restart: %v", err)
	}
}

func (s *Server) newClient() *minio.Client {
	c, err := minio.New(s.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(AccessKey, SecretKey, ""), MaxRetries: 1})
	if err != nil {
		panic(err) // only a malformed endpoint fails, and ours is host:port
	}
	return c
}

// Client is a client with the root credentials.
func (s *Server) Client() *minio.Client { return s.newClient() }

// MakeBucket makes a bucket, removed (with its objects) at the end of the test.
func (s *Server) MakeBucket(t testing.TB, name string) {
	t.Helper()
	c := s.newClient()
	ctx := context.Background()
	if err := c.MakeBucket(ctx, name, minio.MakeBucketOptions{}); err != nil {
		t.Fatalf("make bucket %q: %v", name, err)
	}
	t.Cleanup(func() {
		c.RemoveBucketWithOptions(ctx, name, minio.RemoveBucketOptions{ForceDelete: true})
	})
}
