package polyglot

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/eventgate/eventgate/pkg/testenv"
)

// root is the repository, from this package's folder (go test runs a test in it).
const root = "../.."

// javaJars is the Java client's classpath from Debian's jars, jar by jar: libgrpc-java
// does not depend on grpc-java's own dependencies, so each is named here.
var javaJars = []string{
	"grpc-api", "grpc-context", "grpc-core", "grpc-netty", "grpc-protobuf", "grpc-protobuf-lite", "grpc-stub",
	"protobuf", "guava", "perfmark-api",
	"netty-buffer", "netty-codec", "netty-codec-http", "netty-codec-http2", "netty-codec-socks", "netty-common",
	"netty-handler", "netty-handler-proxy", "netty-resolver", "netty-transport",
	"geronimo-annotation-1.3-spec", // javax.annotation.Generated, which the stubs use, left the JDK in Java 11
}

// eventLine is one event as the clients print it.
var eventLine = regexp.MustCompile(`(?m)^event (\d+): name=(\S+) id=(\S+) content_type=application/json payload=(\{"eventTime":"[^"]+"\})$`)

// TestCppClient builds tools/polyglot/cpp against the C++ stubs and Debian's libgrpc++ and
// runs it against a real calendar gateway server.
func TestCppClient(t *testing.T) {
	t.Parallel()
	gen := stubs(t, "cpp", "gateways/eventing.grpc.pb.cc")
	need(t, "g++ (Debian g++)", lookPath("g++"))
	need(t, "pkg-config (Debian pkg-config)", lookPath("pkg-config"))
	flags, err := exec.Command("pkg-config", "--cflags", "--libs", "grpc++", "protobuf").Output()
	need(t, "grpc++ and protobuf for pkg-config (Debian libgrpc++-dev)", err)

	bin := filepath.Join(t.TempDir(), "client")
	args := []string{"-std=c++17", "-O1", "-I" + gen, "-o", bin,
		filepath.Join(root, "tools/polyglot/cpp/client.cc"),
		filepath.Join(gen, "gateways/eventing.pb.cc"),
		filepath.Join(gen, "gateways/eventing.grpc.pb.cc"),
	}
	build(t, "g++", append(args, strings.Fields(string(flags))...)...)
	runClient(t, "polyglot-cpp", bin)
}

// TestJavaClient builds tools/polyglot/java against the Java stubs and Debian's grpc-java
// jars and runs it against a real calendar gateway server.
func TestJavaClient(t *testing.T) {
	t.Parallel()
	gen := stubs(t, "java", "dev/eventgate/gateways/EventingGrpc.java")
	need(t, "javac (Debian default-jdk-headless)", lookPath("javac"))
	need(t, "java (Debian default-jdk-headless)", lookPath("java"))
	var cp []string
	for _, jar := range javaJars {
		p := filepath.Join("/usr/share/java", jar+".jar")
		_, err := os.Stat(p)
		need(t, p+" (Debian libgrpc-java, libprotobuf-java, libguava-java, libnetty-java, libperfmark-java, libgeronimo-annotation-1.3-spec-java)", err)
		cp = append(cp, p)
	}

	classes := t.TempDir()
	srcs, err := filepath.Glob(filepath.Join(gen, "dev/eventgate/gateways/*.java"))
	if err != nil {
		t.Fatal(err)
	}
	args := append([]string{"-d", classes, "-cp", strings.Join(cp, ":"), filepath.Join(root, "tools/polyglot/java/Client.java")}, srcs...)
	build(t, "javac", args...)
	runClient(t, "polyglot-java", "java", "-cp", strings.Join(append([]string{classes}, cp...), ":"), "Client")
}

// runClient runs the client command (its arguments before the client's own) against a
// real calendar gateway server: a valid source gives three events, an invalid one exit
// status 1 with the gateway's reason.
func runClient(t *testing.T, source string, command ...string) {
	addr := startCalendar(t)
	tests := []struct {
		name     string
		data     string
		wantCode int
		check    func(t *testing.T, stdout, stderr string)
	}{
		{"valid source streams three events", "interval: 100ms", 0, func(t *testing.T, stdout, _ string) {
			if !strings.Contains(stdout, "valid: "+source+"\n") {
				t.Errorf("no validation line in the output:\n%s", stdout)
			}
			events := eventLine.FindAllStringSubmatch(stdout, -1)
			if len(events) != 3 {
				t.Fatalf("got %d event lines, want 3:\n%s", len(events), stdout)
			}
			ids := map[string]bool{}
			for i, ev := range events {
				if ev[1] != fmt.Sprint(i+1) || ev[2] != source {
					t.Errorf("event line %d: number %s, name %q; want %d, %q", i+1, ev[1], ev[2], i+1, source)
				}
				ids[ev[3]] = true
			}
			if len(ids) != 3 {
				t.Errorf("event ids are not distinct:\n%s", stdout)
			}
		}},
		{"invalid source is refused with the reason", "interval: -1s", 1, func(t *testing.T, stdout, stderr string) {
			if want := "source is invalid: calendar.interval: must be positive, got -1s"; !strings.Contains(stderr, want) {
				t.Errorf("stderr does not say %q:\n%s", want, stderr)
			}
			if strings.Contains(stdout, "event ") {
				t.Errorf("events from an invalid source:\n%s", stdout)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
			defer cancel()
			args := append(append([]string{}, command[1:]...), addr, tc.data, "3")
			cmd := exec.CommandContext(ctx, command[0], args...)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			code := 0
			if exit := (*exec.ExitError)(nil); errors.As(err, &exit) {
				code = exit.ExitCode()
			} else if err != nil {
				t.Fatalf("run %s: %v", command[0], err)
			}
			if code != tc.wantCode {
				t.Fatalf("exit status %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.wantCode, stdout.String(), stderr.String())
			}
			tc.check(t, stdout.String(), stderr.String())
		})
	}
}

// startCalendar runs the calendar gateway server, built from this checkout, on a loopback
// port until the test ends. The clients wait for it to be ready (gRPC wait-for-ready).
func startCalendar(t *testing.T) string {
	t.Helper()
	bin := testenv.Binary(t, "services/gateways/calendar")
	addr := testenv.FreePort(t)
	_, port, _ := net.SplitHostPort(addr)
	testenv.StartProcess(t, bin, nil, "GATEWAY_SERVER_HOST=127.0.0.1", "GATEWAY_SERVER_PORT="+port)
	return addr
}

// stubs returns the folder of lang's generated stubs, which must hold file.
func stubs(t *testing.T, lang, file string) string {
	t.Helper()
	dir := filepath.Join(root, "protos/gen", lang)
	_, err := os.Stat(filepath.Join(dir, file))
	need(t, lang+" stubs in protos/gen/"+lang, err)
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

// build runs a compiler, failing the test with its output.
func build(t *testing.T, name string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	if out, err := exec.CommandContext(ctx, name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	t.Logf("%s: built in %s", name, time.Since(start).Round(time.Millisecond))
}

func lookPath(name string) error {
	_, err := exec.LookPath(name)
	return err
}

// need skips the test loudly when err says a toolchain or the stubs are missing, and fails
// it under EVENTGATE_REQUIRE_TEST_SERVERS=1 (tools/test.sh, CI), which installs them.
func need(t *testing.T, what string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	msg := fmt.Sprintf("\n*** SKIPPING: no %s: %v"+
		"\n*** run tools/protogen.sh stubs (installs the toolchains on first use), or the README's test command\n", what, err)
	if os.Getenv("EVENTGATE_REQUIRE_TEST_SERVERS") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}
