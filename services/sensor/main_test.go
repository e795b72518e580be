package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	cenats "github.com/cloudevents/sdk-go/protocol/nats/v2"
	"github.com/cloudevents/sdk-go/v2/client"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/protocol"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/eventgate/eventgate/pkg/sensorsink"
	"github.com/eventgate/eventgate/pkg/testenv"
	"github.com/eventgate/eventgate/pkg/testenv/natsenv"
)

// runAsSensor makes this test binary the sensor when a test below re-executes it, so that
// main is tested as a real process: flags, stdout, exit codes, signals.
const runAsSensor = "EVENTGATE_TEST_RUN_AS_SENSOR"

func TestMain(m *testing.M) { os.Exit(testenv.MainOrTests(m, runAsSensor, main, nil)) }

type sensorProcess struct {
	cmd    *exec.Cmd
	lines  chan string // stdout, line by line
	stderr *testenv.SyncBuffer
	exited chan error
}

func startSensor(t *testing.T, args ...string) *sensorProcess {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	p := &sensorProcess{cmd: exec.Command(exe, args...), lines: make(chan string, 100), stderr: &testenv.SyncBuffer{}, exited: make(chan error, 1)}
	p.cmd.Env = append(os.Environ(), runAsSensor+"=1")
	p.cmd.Stderr = p.stderr
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		s := bufio.NewScanner(stdout)
		for s.Scan() {
			p.lines <- s.Text()
		}
	}()
	// Wait must follow the last read of stdout.
	go func() { <-scanned; p.exited <- p.cmd.Wait() }()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		if t.Failed() {
			t.Logf("sensor stderr:\n%s", p.stderr)
		}
	})
	return p
}

func (p *sensorProcess) line(t *testing.T) string {
	t.Helper()
	select {
	case l := <-p.lines:
		return l
	case <-time.After(10 * time.Second):
		t.Fatal("no output line within 10s")
		return ""
	}
}

func (p *sensorProcess) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-p.exited:
		return err
	case <-time.After(20 * time.Second):
		t.Fatal("sensor still running 20s on")
		return nil
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	return lis.Addr().String()
}

func waitHealthy(t *testing.T, addr string) {
	t.Helper()
	testenv.Eventually(t, 20*time.Second, 20*time.Millisecond, func() error {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("healthz: %s", resp.Status)
		}
		return nil
	})
}

func demoEvent(id string) event.Event {
	e := event.New()
	e.SetID(id)
	e.SetSource("calendar-gateway")
	e.SetType("calendar")
	e.SetSubject("every-two-seconds")
	e.SetTime(time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC))
	if err := e.SetData("application/json", map[string]string{"eventTime": "2026-05-01T10:00:00Z"}); err != nil {
		panic(err)
	}
	return e
}

func httpSend(ctx context.Context, t *testing.T, url string, e event.Event) protocol.Result {
	p, err := cehttp.New(cehttp.WithTarget(url))
	if err != nil {
		t.Error(err)
		return err
	}
	c, err := client.New(p, client.WithForceBinary())
	if err != nil {
		t.Error(err)
		return err
	}
	return c.Send(ctx, e)
}

func TestSensorPrintsEachEventAsALine(t *testing.T) {
	for _, tc := range []struct {
		output, want string
	}{
		{"pretty", `2026-05-01T10:00:00.000Z source=calendar-gateway type=calendar subject=every-two-seconds id=e1 data={"eventTime":"2026-05-01T10:00:00Z"}`},
		{"json", `{"specversion":"1.0","id":"e1","source":"calendar-gateway","type":"calendar","subject":"every-two-seconds","datacontenttype":"application/json","time":"2026-05-01T10:00:00Z","data":{"eventTime":"2026-05-01T10:00:00Z"}}`},
	} {
		t.Run(tc.output, func(t *testing.T) {
			addr := freeAddr(t)
			p := startSensor(t, "--http", addr, "--output", tc.output)
			waitHealthy(t, addr)
			if res := httpSend(t.Context(), t, "http://"+addr+"/", demoEvent("e1")); !protocol.IsACK(res) {
				t.Fatalf("send: %v", res)
			}
			if got := p.line(t); got != tc.want {
				t.Errorf("stdout:\n got %s\nwant %s", got, tc.want)
			}
		})
	}
}

// The gateway-client's fault tests run the sensor as a process and drive it like this.
func TestSensorStopsOnSIGTERMReleasingAStalledDelivery(t *testing.T) {
	addr := freeAddr(t)
	p := startSensor(t, "--http", addr, "--output", "json")
	waitHealthy(t, addr)

	req, err := http.NewRequestWithContext(t.Context(), http.MethodPut, "http://"+addr+"/control/mode", strings.NewReader("stall"))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	sent := make(chan protocol.Result, 1)
	go func() { sent <- httpSend(t.Context(), t, "http://"+addr+"/", demoEvent("stalled")) }()
	testenv.Eventually(t, 10*time.Second, 10*time.Millisecond, func() error {
		resp, err := http.Get("http://" + addr + "/control/stats")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var stats sensorsink.Stats
		if err := json.NewDecoder(resp.Body).Decode(&stats); err != nil {
			return err
		}
		if stats.Held != 1 {
			return fmt.Errorf("stats %+v, want 1 held", stats)
		}
		return nil
	})

	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := p.wait(t); err != nil {
		t.Fatalf("sensor exited with %v, want 0", err)
	}
	var httpResult *cehttp.Result
	if res := <-sent; !protocol.ResultAs(res, &httpResult) || httpResult.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("stalled sender got %v, want 503 so that it retries elsewhere", res)
	}
	select {
	case l := <-p.lines:
		t.Errorf("printed %s for a refused event", l)
	default:
	}
}

func TestSensorReceivesOverNATS(t *testing.T) {
	natsURL := natsenv.Start(t, -1)

	addr := freeAddr(t)
	p := startSensor(t, "--http", addr, "--nats-url", natsURL, "--nats-subject", "sensor.demo", "--output", "json")
	// Healthy means started, and Start returns once the subscription is in place.
	waitHealthy(t, addr)

	sender, err := cenats.NewSender(natsURL, "sensor.demo", cenats.NatsOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer sender.Close(context.Background())
	c, err := client.New(sender)
	if err != nil {
		t.Fatal(err)
	}
	if res := c.Send(t.Context(), demoEvent("over-nats")); !protocol.IsACK(res) {
		t.Fatal(res)
	}
	var got event.Event
	if err := json.Unmarshal([]byte(p.line(t)), &got); err != nil || got.ID() != "over-nats" {
		t.Errorf("printed event %v (%v), want over-nats", got, err)
	}
	if err := p.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if err := p.wait(t); err != nil {
		t.Errorf("sensor exited with %v after SIGINT, want 0", err)
	}
}

func TestSensorRejectsBadFlagsWithExitCode2(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string // the last line of stderr
	}{
		{"bad mode", []string{"--mode", "maybe"}, `sensor: --mode: "maybe" is not ok, fail or stall (sensor -h lists the flags)`},
		{"two problems, one line", []string{"--output", "yaml", "--nats-url", "nats://n"},
			`sensor: --output: "yaml" is not pretty or json; --nats-subject: required with a NATS URL (sensor -h lists the flags)`},
		{"unknown flag", []string{"--port=9300"}, "sensor: flag provided but not defined: -port (sensor -h lists the flags)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := startSensor(t, tc.args...)
			err := p.wait(t)
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 2 {
				t.Errorf("exit %v, want code 2", err)
			}
			lines := strings.Split(strings.TrimSpace(p.stderr.String()), "\n")
			if got := lines[len(lines)-1]; got != tc.want {
				t.Errorf("stderr ends\n %s\nwant\n %s", got, tc.want)
			}
		})
	}
}

func TestSensorFailsToListenWithExitCode1(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	p := startSensor(t, "--http", lis.Addr().String())
	err = p.wait(t)
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Errorf("exit %v, want code 1", err)
	}
	if want := "sensor: listen on " + lis.Addr().String(); !strings.Contains(p.stderr.String(), want) {
		t.Errorf("stderr does not say %q:\n%s", want, p.stderr)
	}
}
