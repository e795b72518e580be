// Package amqpenv gives tests a real RabbitMQ broker on loopback: the one named by
// EVENTGATE_AMQP_URL, or one it starts with tools/testservers/rabbitmq.sh once per test process.
package amqpenv

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// The environment that tools/testservers/rabbitmq.sh start prints, and the switch that
// turns a missing broker from a skip into a failure (the README test command and CI set it).
const (
	EnvURL     = "EVENTGATE_AMQP_URL"
	EnvCtl     = "EVENTGATE_AMQP_CTL"
	EnvRequire = "EVENTGATE_REQUIRE_TEST_SERVERS"
	// EnvScript overrides where the start script is (found by walking up from the test's
	// working directory otherwise).
	EnvScript = "EVENTGATE_RABBITMQ_SCRIPT"
)

const serverBinary = "/usr/lib/rabbitmq/bin/rabbitmq-server"

// Broker is a running RabbitMQ node.
type Broker struct {
	// URL is amqp://guest:guest@127.0.0.1:PORT/.
	URL string
	// ctl is the env file of the start script, needed to restart the node; empty when the
	// broker came from EVENTGATE_AMQP_URL alone.
	ctl    string
	script string
}

var (
	once    sync.Once
	shared  *Broker
	started bool // this process started shared, and stops it in Run
	err     error
)

// Start returns the test broker, starting it on first use. Without a broker it skips the
// test with the reason, or fails it when EVENTGATE_REQUIRE_TEST_SERVERS=1.
func Start(t testing.TB) *Broker {
	t.Helper()
	once.Do(func() { shared, err = find() })
	if err != nil {
		if os.Getenv(EnvRequire) == "1" {
			t.Fatalf("RabbitMQ is required (%s=1) but not available: %v", EnvRequire, err)
		}
		t.Skipf("SKIPPED: no RabbitMQ for this test: %v (run tools/testservers/rabbitmq.sh start and export what it prints, or set %s=1 to fail instead)", err, EnvRequire)
	}
	return shared
}

// Restart restarts the broker on the same port with the same data, as a broker restart in
// production does: connected clients see their connections drop, and durable queues keep
// their persistent messages.
func (b *Broker) Restart(t testing.TB) {
	t.Helper()
	if b.ctl == "" || b.script == "" {
		msg := fmt.Sprintf("cannot restart the broker at %s: %s names no control file (tools/testservers/rabbitmq.sh start prints it)", b.URL, EnvCtl)
		if os.Getenv(EnvRequire) == "1" {
			t.Fatal(msg)
		}
		t.Skip("SKIPPED: " + msg)
	}
	if out, err := exec.Command(b.script, "restart", b.ctl).CombinedOutput(); err != nil {
		t.Fatalf("restart RabbitMQ: %v\n%s", err, out)
	}
}

// Run runs the tests of a package (call it from TestMain) and stops a broker that this
// process started. A crashed test process leaves no node behind either: the script's
// watchdog stops it when the process is gone.
func Run(m *testing.M) int {
	code := m.Run()
	if started {
		if out, err := exec.Command(shared.script, "stop", shared.ctl).CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "amqpenv: stop RabbitMQ: %v\n%s", err, out)
		}
	}
	return code
}

func find() (*Broker, error) {
	script, scriptErr := findScript()
	if url := os.Getenv(EnvURL); url != "" {
		return &Broker{URL: url, ctl: os.Getenv(EnvCtl), script: script}, nil
	}
	if scriptErr != nil {
		return nil, fmt.Errorf("%s is not set and %w", EnvURL, scriptErr)
	}
	// The script would install RabbitMQ; a plain go test does not install packages unless
	// the run requires every test server.
	if _, err := os.Stat(serverBinary); err != nil && os.Getenv(EnvRequire) != "1" {
		return nil, fmt.Errorf("%s is not set and rabbitmq-server is not installed (%s)", EnvURL, serverBinary)
	}
	cmd := exec.Command(script, "start", "--watch-pid", fmt.Sprint(os.Getpid()))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s start: %w\n%s", script, err, stderr.String())
	}
	b := &Broker{script: script}
	for _, line := range strings.Split(string(out), "\n") {
		name, value, _ := strings.Cut(strings.TrimPrefix(line, "export "), "=")
		switch name {
		case EnvURL:
			b.URL = value
		case EnvCtl:
			b.ctl = value
		}
	}
	if b.URL == "" || b.ctl == "" {
		return nil, fmt.Errorf("%s start printed no %s and %s:\n%s", script, EnvURL, EnvCtl, out)
	}
	started = true
	return b, nil
}

// findScript looks for tools/testservers/rabbitmq.sh above the working directory (a
// package's tests run in its folder).
func findScript() (string, error) {
	if s := os.Getenv(EnvScript); s != "" {
		return s, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		s := filepath.Join(dir, "tools", "testservers", "rabbitmq.sh")
		if _, err := os.Stat(s); err == nil {
			return s, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("tools/testservers/rabbitmq.sh not found above the working directory (set %s)", EnvScript)
		}
		dir = parent
	}
}
