// Package custom_test runs the custom gateways of examples/custom (Python, TypeScript) as
// real processes, on the stubs tools/protogen.sh generates, under the real gateway-client in
// local mode, and checks what a user of each would see: events at the sensor as CloudEvents,
// bad configs shown invalid with the gateway's reason in /status, streams that stop when
// cancelled.
package custom_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/eventgate/eventgate/pkg/sensorsink"
	"github.com/eventgate/eventgate/pkg/testenv"
	"github.com/eventgate/eventgate/protos/gateways"
	"github.com/eventgate/eventgate/tools/gwcat/conform"
	"github.com/eventgate/eventgate/tools/gwcat/conform/conformtest"
)

// noHealth: the examples serve no grpc.health.v1 (kept to one file each, on the generated
// stubs alone), which the kit reports as a warning, not a failure.
var noHealth = map[string]conform.Status{"health": conform.Warn}

// python is Debian's interpreter, the one with python3-grpcio and python3-protobuf; the
// python3 first on PATH may be another build without them.
const python = "/usr/bin/python3"

func TestPythonDirWatch(t *testing.T) {
	root := repoRoot(t)
	stubs := filepath.Join(root, "protos/gen/python")
	if _, err := os.Stat(filepath.Join(stubs, "gateways/eventing_pb2_grpc.py")); err != nil {
		missing(t, "Python stubs", "run tools/protogen.sh stubs python")
	}
	if out, err := exec.Command(python, "-c", "import grpc, google.protobuf, yaml").CombinedOutput(); err != nil {
		missing(t, "Python gRPC runtime", fmt.Sprintf("%s cannot import grpc, protobuf and yaml (%v: %s): apt-get install python3-grpcio python3-protobuf python3-yaml", python, err, strings.TrimSpace(string(out))))
	}
	addr := testenv.FreePort(t)
	testenv.StartProcess(t, python, []string{filepath.Join(root, "examples/custom/python/dirwatch.py")},
		"PYTHONPATH="+stubs, "GATEWAY_SERVER_HOST=127.0.0.1", "GATEWAY_SERVER_PORT="+portOf(addr))
	gw := dialGateway(t, addr)
	t.Run("shipped examples are valid", func(t *testing.T) {
		expectValid(t, gw, testenv.Examples(t, filepath.Join(root, "examples/custom/python"), "dirwatch"))
	})

	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "a.txt"), "a")
	sensor := testenv.StartSensor(t, sensorsink.Endpoints{})
	client := testenv.StartClient(t, testenv.ClientConfig{
		GatewayType: "dirwatch",
		Servers:     []string{addr},
		Sensors:     []string{sensor.URL},
		Sources: map[string]string{
			// includeExisting makes a.txt the first event: the watch has taken its first look.
			"inbox":  fmt.Sprintf("dir:\n  path: %s\ninterval: 100ms\nincludeExisting: true", dir),
			"broken": "dir:\n  path: relative/inbox\ninterval: 1ms",
		},
	})

	t.Run("events reach the sensor as CloudEvents", func(t *testing.T) {
		type change struct {
			Path  string `json:"path"`
			Event string `json:"event"`
			Size  int64  `json:"size"`
			Mtime string `json:"mtime"`
		}
		steps := []struct {
			name string
			do   func()
			want change
		}{
			{"existing file", func() {}, change{Path: filepath.Join(dir, "a.txt"), Event: "created", Size: 1}},
			{"created", func() { writeFile(t, filepath.Join(dir, "b.txt"), "bb") }, change{Path: filepath.Join(dir, "b.txt"), Event: "created", Size: 2}},
			{"changed", func() { writeFile(t, filepath.Join(dir, "a.txt"), "aaa") }, change{Path: filepath.Join(dir, "a.txt"), Event: "changed", Size: 3}},
			{"deleted", func() { os.Remove(filepath.Join(dir, "b.txt")) }, change{Path: filepath.Join(dir, "b.txt"), Event: "deleted", Size: 2}},
		}
		for i, step := range steps {
			step.do()
			e := waitEvent(t, sensor, i+1)
			checkCloudEvent(t, e, "dirwatch", "inbox")
			var got change
			if err := json.Unmarshal(e.Data(), &got); err != nil {
				t.Fatalf("%s: data %s: %v", step.name, e.Data(), err)
			}
			if _, err := time.Parse(time.RFC3339Nano, got.Mtime); err != nil {
				t.Errorf("%s: mtime %q: %v", step.name, got.Mtime, err)
			}
			got.Mtime = ""
			if got != step.want {
				t.Fatalf("%s: event %+v, want %+v", step.name, got, step.want)
			}
		}
	})

	t.Run("bad config is invalid with the gateway's reason", func(t *testing.T) {
		expectInvalid(t, client, "broken", "dir.path: must be an absolute path, got 'relative/inbox'", "interval: must be at least 100ms")
	})

	t.Run("passes the conformance kit", func(t *testing.T) {
		dirs := []string{t.TempDir(), t.TempDir()}
		source := func(d string) string { return fmt.Sprintf("dir:\n  path: %s\ninterval: 100ms", d) }
		var files atomic.Int64
		conformtest.Check(t, addr, conform.Options{
			Valid: source(dirs[0]), Valid2: source(dirs[1]), Invalid: "dir:\n  path: relative/inbox",
			Timeout: 20 * time.Second, Stall: time.Second,
			// A new file in the source's folder is its next event.
			Trigger: func(_ context.Context, es *gateways.EventSource) error {
				d := dirs[0]
				if es.GetData() == source(dirs[1]) {
					d = dirs[1]
				}
				return os.WriteFile(filepath.Join(d, fmt.Sprintf("f%d.txt", files.Add(1))), []byte("x"), 0o644)
			},
		}, noHealth)
	})

	t.Run("cancelled streams stop", func(t *testing.T) {
		// The server has 64 workers, one per open stream: if a cancelled stream kept its
		// worker, the calls after the 64th would never start.
		data := fmt.Sprintf("dir:\n  path: %s\ninterval: 1h\nincludeExisting: true", dir)
		for i := range 80 {
			firstEvent(t, gw, fmt.Sprintf("cancel-%d", i), data)
		}
	})
}

func TestNodeHTTPPoll(t *testing.T) {
	root := repoRoot(t)
	example := filepath.Join(root, "examples/custom/node")
	stubs := filepath.Join(root, "protos/gen/ts")
	if _, err := os.Stat(filepath.Join(stubs, "gateways/eventing.ts")); err != nil {
		missing(t, "TypeScript stubs", "run tools/protogen.sh stubs ts")
	}
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing(t, tool, "install Node.js 20+ with npm")
		}
	}
	js := buildNode(t, example, stubs)

	var (
		mu       sync.Mutex
		status   = http.StatusOK
		body     = "v1"
		requests atomic.Int64
	)
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		requests.Add(1)
		mu.Lock()
		defer mu.Unlock()
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	t.Cleanup(site.Close)
	set := func(s int, b string) {
		mu.Lock()
		status, body = s, b
		mu.Unlock()
	}

	addr := testenv.FreePort(t)
	testenv.StartProcess(t, "node", []string{js}, "GATEWAY_SERVER_HOST=127.0.0.1", "GATEWAY_SERVER_PORT="+portOf(addr))
	gw := dialGateway(t, addr)
	t.Run("shipped examples are valid", func(t *testing.T) {
		expectValid(t, gw, testenv.Examples(t, example, "httppoll"))
	})

	sensor := testenv.StartSensor(t, sensorsink.Endpoints{})
	sources := map[string]string{
		"site":   fmt.Sprintf("url: %s/health\ninterval: 100ms\nemitFirst: true", site.URL),
		"broken": "url: ftp://example.com/file\non: [size]",
	}
	client := testenv.StartClient(t, testenv.ClientConfig{
		GatewayType: "httppoll",
		Servers:     []string{addr},
		Sensors:     []string{sensor.URL},
		Sources:     sources,
	})

	t.Run("events reach the sensor as CloudEvents", func(t *testing.T) {
		type poll struct {
			URL            string   `json:"url"`
			Changed        []string `json:"changed"`
			Status         int      `json:"status"`
			PreviousStatus int      `json:"previousStatus"`
			BodyHash       string   `json:"bodyHash"`
		}
		steps := []struct {
			name        string
			do          func()
			changed     string
			status      int
			prev        int
			body        string
			wantChanged []string
		}{
			{name: "first poll", do: func() {}, status: 200, body: "v1", wantChanged: []string{}},
			{name: "body changed", do: func() { set(200, "v2") }, status: 200, prev: 200, body: "v2", wantChanged: []string{"body"}},
			{name: "status changed", do: func() { set(503, "v2") }, status: 503, prev: 200, body: "v2", wantChanged: []string{"status"}},
		}
		for i, step := range steps {
			step.do()
			e := waitEvent(t, sensor, i+1)
			checkCloudEvent(t, e, "httppoll", "site")
			var got poll
			if err := json.Unmarshal(e.Data(), &got); err != nil {
				t.Fatalf("%s: data %s: %v", step.name, e.Data(), err)
			}
			sum := sha256.Sum256([]byte(step.body))
			if got.URL != site.URL+"/health" || got.Status != step.status || got.PreviousStatus != step.prev ||
				got.BodyHash != hex.EncodeToString(sum[:]) || strings.Join(got.Changed, ",") != strings.Join(step.wantChanged, ",") {
				t.Fatalf("%s: event %s, want status %d (previous %d), body %q, changed %v", step.name, e.Data(), step.status, step.prev, step.body, step.wantChanged)
			}
		}
	})

	t.Run("bad config is invalid with the gateway's reason", func(t *testing.T) {
		expectInvalid(t, client, "broken", "url: must be http or https, got ftp:", `on[0]: must be status or body, got "size"`)
	})

	t.Run("passes the conformance kit", func(t *testing.T) {
		source := func(path string) string { return fmt.Sprintf("url: %s%s\ninterval: 100ms", site.URL, path) }
		var changes atomic.Int64
		conformtest.Check(t, addr, conform.Options{
			Valid: source("/a"), Valid2: source("/b"), Invalid: "url: ftp://example.com/file",
			Timeout: 20 * time.Second, Stall: time.Second,
			// A new body is a change every source polling the site sees.
			Trigger: func(context.Context, *gateways.EventSource) error {
				set(http.StatusOK, fmt.Sprintf("v%d", changes.Add(1)))
				return nil
			},
		}, noHealth)
	})

	t.Run("removed source stops polling", func(t *testing.T) {
		client.SetSources(t, map[string]string{"broken": sources["broken"]})
		// The client cancels the stream; the gateway must stop polling the URL. Two readings
		// a second apart (ten intervals) that agree mean it has.
		last := int64(-1)
		testenv.Eventually(t, 15*time.Second, time.Second, func() error {
			n := requests.Load()
			if n != last {
				last = n
				return fmt.Errorf("still polling: %d requests", n)
			}
			return nil
		})
	})
}

// buildNode compiles the TypeScript example as its README does (npm ci, stubs copied into
// src/gen, tsc) in a temporary folder, with node_modules installed once per package-lock
// into the user's cache, and returns the compiled server's path.
func buildNode(t *testing.T, example, stubs string) string {
	t.Helper()
	lock, err := os.ReadFile(filepath.Join(example, "package-lock.json"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(lock)
	cache, err := os.UserCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	deps := filepath.Join(cache, "eventgate/examples", "node-"+hex.EncodeToString(sum[:6]))
	if _, err := os.Stat(filepath.Join(deps, "node_modules/.bin/tsc")); err != nil {
		start := time.Now()
		// Install beside it and rename, so that concurrent test runs never see half a tree.
		tmp, err := os.MkdirTemp(filepath.Dir(deps), "node-install-")
		if err != nil {
			if err = os.MkdirAll(filepath.Dir(deps), 0o755); err == nil {
				tmp, err = os.MkdirTemp(filepath.Dir(deps), "node-install-")
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		defer os.RemoveAll(tmp)
		copyFiles(t, example, tmp, "package.json", "package-lock.json")
		run(t, tmp, "npm", "ci", "--no-audit", "--no-fund")
		if err := os.Rename(tmp, deps); err != nil && !errors.Is(err, os.ErrExist) && !isNotEmpty(err) {
			t.Fatal(err)
		}
		t.Logf("npm ci into %s: %s", deps, time.Since(start).Round(time.Millisecond))
	}

	build := t.TempDir()
	copyFiles(t, example, build, "package.json", "tsconfig.json", "src/httppoll.ts")
	if err := os.CopyFS(filepath.Join(build, "src/gen"), os.DirFS(stubs)); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(deps, "node_modules"), filepath.Join(build, "node_modules")); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	run(t, build, "node", "node_modules/typescript/bin/tsc", "-p", ".")
	t.Logf("tsc: %s", time.Since(start).Round(time.Millisecond))
	return filepath.Join(build, "dist/httppoll.js")
}

func isNotEmpty(err error) bool { return strings.Contains(err.Error(), "directory not empty") }

func copyFiles(t *testing.T, from, to string, names ...string) {
	t.Helper()
	for _, name := range names {
		b, err := os.ReadFile(filepath.Join(from, name))
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(to, name), string(b))
	}
}

func run(t *testing.T, dir, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// missing skips the test with a loud message, or fails it when the README's test command
// runs it (EVENTGATE_REQUIRE_TEST_SERVERS=1), which provides everything.
func missing(t *testing.T, what, why string) {
	t.Helper()
	msg := fmt.Sprintf("\n*** SKIPPING: no %s: %s\n*** the README's test command (tools/test.sh) provides it\n", what, why)
	if os.Getenv("EVENTGATE_REQUIRE_TEST_SERVERS") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's folder")
		}
		dir = parent
	}
}

func portOf(addr string) string { return addr[strings.LastIndex(addr, ":")+1:] }

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// dialGateway returns a client of the gateway server at addr once it answers.
func dialGateway(t *testing.T, addr string) gateways.EventingClient {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	gw := gateways.NewEventingClient(conn)
	testenv.Eventually(t, 30*time.Second, 50*time.Millisecond, func() error {
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		_, err := gw.ValidateEventSource(ctx, &gateways.EventSource{Name: "probe"})
		return err
	})
	return gw
}

// expectValid checks that the gateway accepts every source.
func expectValid(t *testing.T, gw gateways.EventingClient, sources map[string]string) {
	t.Helper()
	if len(sources) == 0 {
		t.Fatal("no event sources")
	}
	for name, data := range sources {
		resp, err := gw.ValidateEventSource(t.Context(), &gateways.EventSource{Name: name, Data: data})
		if err != nil {
			t.Fatal(err)
		}
		if !resp.GetIsValid() {
			t.Errorf("%s: invalid: %s", name, resp.GetReason())
		}
	}
}

// firstEvent starts a source directly on the gateway, reads one event and cancels the call.
func firstEvent(t *testing.T, gw gateways.EventingClient, name, data string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	stream, err := gw.StartEventSource(ctx, &gateways.EventSource{Name: name, Data: data})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

func waitEvent(t *testing.T, sensor *testenv.Sensor, n int) event.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	got, err := sensor.Wait(ctx, n)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) > n {
		t.Fatalf("%d events, want %d: an unexpected one: %v", len(got), n, got[n])
	}
	return got[n-1]
}

func checkCloudEvent(t *testing.T, e event.Event, gatewayType, source string) {
	t.Helper()
	if e.Type() != gatewayType || e.Subject() != source || e.Source() != gatewayType+"-gateway" || e.ID() == "" ||
		e.DataContentType() != "application/json" {
		t.Fatalf("CloudEvent type %q subject %q source %q id %q content type %q, want type %q subject %q source %q, an id, application/json",
			e.Type(), e.Subject(), e.Source(), e.ID(), e.DataContentType(), gatewayType, source, gatewayType+"-gateway")
	}
}

// expectInvalid waits until the client's /status shows the source invalid, its message
// holding each of the gateway's reasons.
func expectInvalid(t *testing.T, c *testenv.Client, name string, reasons ...string) {
	t.Helper()
	type status struct {
		Name    string `json:"name"`
		Phase   string `json:"phase"`
		Message string `json:"message"`
		Invalid bool   `json:"invalid"`
	}
	testenv.Eventually(t, 15*time.Second, 50*time.Millisecond, func() error {
		resp, err := http.Get(c.ObserveURL + "/status")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var sts []status
		if err := json.NewDecoder(resp.Body).Decode(&sts); err != nil {
			return err
		}
		for _, st := range sts {
			if st.Name != name {
				continue
			}
			if !st.Invalid {
				return fmt.Errorf("%s: %+v, not invalid", name, st)
			}
			for _, r := range reasons {
				if !strings.Contains(st.Message, r) {
					return fmt.Errorf("%s: message %q lacks %q", name, st.Message, r)
				}
			}
			return nil
		}
		return fmt.Errorf("%s: not in /status %+v", name, sts)
	})
}
