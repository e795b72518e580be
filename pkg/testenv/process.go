package testenv

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/eventgate/eventgate/pkg/freeport"
)

// BuildTags are the Go build tags of eventgate's binaries, as .bazelrc gives them to Bazel:
// grpcnotrace leaves gRPC's request-tracing pages (and html/template) out of the binary.
const BuildTags = "grpcnotrace"

// binaries holds the binaries built in this test process, by package path, so that every
// test that runs the same command shares one build.
var binaries sync.Map // string -> *builtBinary

type builtBinary struct {
	once sync.Once
	path string
	err  error
}

// Binary returns the path of the command in the repository's package pkg ("services/gateway-client").
// Under Bazel the go_test passes it as data, in the environment variable
// EVENTGATE_BIN_<NAME> (NAME from the last path element, upper case, '-' as '_') with the
// path from the runfiles root; under go test it is built once per test process with the
// go command, from this checkout.
func Binary(t testing.TB, pkg string) string {
	t.Helper()
	env := "EVENTGATE_BIN_" + strings.ToUpper(strings.ReplaceAll(filepath.Base(pkg), "-", "_"))
	if p := os.Getenv(env); p != "" {
		// $(rootpath) is relative to the workspace's runfiles, while a Go test runs in its
		// package's folder there.
		if srcdir := os.Getenv("TEST_SRCDIR"); srcdir != "" && !filepath.IsAbs(p) {
			p = filepath.Join(srcdir, os.Getenv("TEST_WORKSPACE"), p)
		}
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("%s: %v", env, err)
		}
		return p
	}
	if os.Getenv("TEST_SRCDIR") != "" {
		msg := fmt.Sprintf("under Bazel, %s needs %s (add the binary to the go_test's data and env)", pkg, env)
		if os.Getenv("EVENTGATE_REQUIRE_TEST_SERVERS") == "1" {
			t.Fatal(msg)
		}
		t.Skip("SKIPPED: " + msg)
	}
	v, _ := binaries.LoadOrStore(pkg, &builtBinary{})
	b := v.(*builtBinary)
	b.once.Do(func() { b.path, b.err = goBuild(pkg) })
	if b.err != nil {
		t.Fatalf("build %s: %v", pkg, b.err)
	}
	return b.path
}

// binDir is this test process's folder of built binaries, eventgate-bin-<pid> in the
// temporary folder. A test process cannot remove it when it ends (the tests share the
// binaries to the last), so each one removes the folders of test processes that have
// ended instead: at most one folder per running process remains.
func binDir() (string, error) {
	old, _ := filepath.Glob(filepath.Join(os.TempDir(), "eventgate-bin-*"))
	for _, d := range old {
		pid, err := strconv.Atoi(strings.TrimPrefix(filepath.Base(d), "eventgate-bin-"))
		if err != nil || pid == os.Getpid() {
			continue
		}
		if syscall.Kill(pid, 0) == syscall.ESRCH {
			os.RemoveAll(d)
		}
	}
	dir := filepath.Join(os.TempDir(), "eventgate-bin-"+strconv.Itoa(os.Getpid()))
	return dir, os.MkdirAll(dir, 0o755)
}

func goBuild(pkg string) (string, error) {
	root, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("find the module root: %w", err)
	}
	dir, err := binDir()
	if err != nil {
		return "", err
	}
	out := filepath.Join(dir, filepath.Base(pkg))
	cmd := exec.Command("go", "build", "-tags", BuildTags, "-o", out, "./"+pkg)
	cmd.Dir = filepath.Dir(strings.TrimSpace(string(root)))
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("%w\n%s", err, msg)
	}
	return out, nil
}

// Process is a command running for a test.
type Process struct {
	Cmd *exec.Cmd
	// Output is what it wrote to stdout and stderr.
	Output *SyncBuffer
	done   chan struct{}
	err    error
}

// StartProcess runs bin with args and env (added to this process's environment) until the
// test ends; its output is kept in Output and shown in the test log when the test fails.
func StartProcess(t testing.TB, bin string, args []string, env ...string) *Process {
	t.Helper()
	p := &Process{Cmd: exec.Command(bin, args...), Output: &SyncBuffer{}, done: make(chan struct{})}
	p.Cmd.Env = append(os.Environ(), env...)
	p.Cmd.Stdout, p.Cmd.Stderr = p.Output, p.Output
	if err := p.Cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", filepath.Base(bin), err)
	}
	go func() {
		p.err = p.Cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.Stop(10 * time.Second)
		if t.Failed() {
			t.Logf("output of %s:\n%s", filepath.Base(bin), p.Output.String())
		}
	})
	return p
}

// Stop sends SIGTERM, waits up to grace for the exit, then kills; it returns the exit
// error (nil for exit 0). It is idempotent.
func (p *Process) Stop(grace time.Duration) error {
	select {
	case <-p.done:
		return p.err
	default:
	}
	p.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		p.Cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("did not exit within %s of SIGTERM: killed", grace)
	}
	return p.err
}

// Kill ends the process with SIGKILL, as a crash would, and waits for it.
func (p *Process) Kill() {
	p.Cmd.Process.Kill()
	<-p.done
}

// Exited reports whether the process has ended, and its exit error.
func (p *Process) Exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// FreePort returns a 127.0.0.1 address with a port that was free a moment ago, for servers
// that must be told their port (a process's flags, a broker restarted on the same port),
// outside the kernel's ephemeral range (freeport.Addr says why).
func FreePort(t testing.TB) string {
	t.Helper()
	addr, err := freeport.Addr()
	if err != nil {
		t.Fatalf("find a free loopback port: %v", err)
	}
	return addr
}

// errNotReady is the condition error of a server that does not answer yet.
var errNotReady = errors.New("not ready")

// MainOrTests lets a test binary double as its package's command, so that tests run main as
// a real process (flags, environment, stdout, exit codes, signals) by re-executing
// os.Args[0] with the variable as set to "1". Otherwise it runs the tests, through tests
// when given (kubeenv.Run, minioenv.Run, ...), else m.Run. Use it as
//
//	func TestMain(m *testing.M) { os.Exit(testenv.MainOrTests(m, runAsGateway, main, nil)) }
func MainOrTests(m *testing.M, as string, main func(), tests func(*testing.M) int) int {
	if os.Getenv(as) == "1" {
		main()
		return 0
	}
	if tests == nil {
		return m.Run()
	}
	return tests(m)
}
