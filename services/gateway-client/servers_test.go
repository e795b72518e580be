package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/eventgate/eventgate/pkg/config"
	"github.com/eventgate/eventgate/pkg/dispatch"
	"github.com/eventgate/eventgate/pkg/sensorsink"
	"github.com/eventgate/eventgate/pkg/server"
	"github.com/eventgate/eventgate/pkg/testenv"
	"github.com/eventgate/eventgate/services/gateway-client/supervisor"
)

// sayGateway is a second gateway type: a source `say: TEXT` emits TEXT every 5 ms. Its
// strict config refuses every-sources, and everyGateway refuses its sources.
type sayGateway struct{}

func (sayGateway) Type() string { return "say" }

func (sayGateway) Parse(_, data string) (server.Source, error) {
	var cfg struct {
		Say string `json:"say"`
	}
	if err := config.Decode("say", data, &cfg); err != nil {
		return nil, err
	}
	if cfg.Say == "" {
		return nil, fmt.Errorf("say.say: required")
	}
	return sayEvery{cfg.Say}, nil
}

type sayEvery struct{ text string }

func (s sayEvery) Start(ctx context.Context, emit server.Emit) error {
	return everySource(5*time.Millisecond).Start(ctx, func(ctx context.Context, _ server.Event) error {
		return emit(ctx, server.Event{Payload: []byte(s.text)})
	})
}

func freeLoopbackAddr(t testing.TB) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	return lis.Addr().String()
}

func get(url string) (string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// The client places each source on the server of the type that accepts it, stamps its
// events with that type, skips an unreachable server, and reports a source that no server
// takes in /status and the metrics: retried while a server could not be asked, invalid
// once every server refused it.
func TestLocalModePlacesSourcesAcrossServers(t *testing.T) {
	every := testenv.StartGateway(t, everyGateway{})
	say := testenv.StartGateway(t, sayGateway{})
	dead := freeLoopbackAddr(t)
	for _, tc := range []struct {
		name    string
		servers []string
		// c's status: the start of its message, and whether it is invalid.
		cMessage string
		cInvalid bool
	}{
		{"one server unreachable", []string{"dead=" + dead, "every=" + every.Addr, "say=" + say.Addr},
			"no gateway server took it: dead=" + dead + ": unreachable", false},
		{"all servers refuse", []string{"every=" + every.Addr, "say=" + say.Addr},
			"invalid: refused by every gateway server: every=" + every.Addr + ": every: ", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sensor := testenv.StartSensor(t, sensorsink.Endpoints{})
			dir := t.TempDir()
			gwFile, cmFile := filepath.Join(dir, "gateway.yaml"), filepath.Join(dir, "event-sources.yaml")
			if err := os.WriteFile(gwFile, []byte(gatewayManifest), 0o644); err != nil {
				t.Fatal(err)
			}
			writeSources(t, cmFile, map[string]string{"a": "every: 5ms", "b": "say: hi", "c": "colour: blue"})
			obs := freeLoopbackAddr(t)
			args := []string{"--gateway", gwFile, "--event-sources", cmFile, "--sensor", "every-sensor=" + sensor.URL, "--metrics-address", obs}
			for _, s := range tc.servers {
				args = append(args, "--server", s)
			}
			cfg, err := parseFlags(args, noEnv)
			if err != nil {
				t.Fatal(err)
			}
			cfg.restartBackoff = dispatch.Backoff{Initial: 10 * time.Millisecond, Max: 200 * time.Millisecond, Factor: 2}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- runLocal(ctx, cfg, testenv.Logger(t)) }()
			defer func() {
				cancel()
				if err := <-done; err != nil {
					t.Errorf("runLocal: %v", err)
				}
			}()

			testenv.Eventually(t, 10*time.Second, 10*time.Millisecond, func() error {
				types := map[string]string{}
				for _, ev := range sensor.Received() {
					types[ev.Subject()] = ev.Type()
				}
				if types["a"] != "every" || types["b"] != "say" || types["c"] != "" {
					return fmt.Errorf("CloudEvent types by source: %v", types)
				}
				return nil
			})
			testenv.Eventually(t, 10*time.Second, 10*time.Millisecond, func() error {
				var sts []supervisor.Status
				if err := getJSON("http://"+obs+"/status", &sts); err != nil {
					return err
				}
				if len(sts) != 3 || sts[2].Name != "c" {
					return fmt.Errorf("/status: %+v", sts)
				}
				c := sts[2]
				if c.Phase != supervisor.PhaseError || c.Invalid != tc.cInvalid || !strings.HasPrefix(c.Message, tc.cMessage) || !strings.Contains(c.Message, "say="+say.Addr+": say: ") {
					return fmt.Errorf("c: %+v, want a message starting %q, invalid %t", c, tc.cMessage, tc.cInvalid)
				}
				metrics, err := get("http://" + obs + "/metrics")
				if err != nil {
					return err
				}
				want := []string{`eventgate_client_event_sources{phase="Running"} 2`, `eventgate_client_event_sources{phase="Error"} 1`}
				invalid := `eventgate_client_event_source_invalid{event_source="c"} 1`
				if tc.cInvalid {
					want = append(want, invalid)
				} else if strings.Contains(metrics, invalid) {
					return fmt.Errorf("c is counted invalid while a server could not be asked")
				}
				for _, w := range want {
					if !strings.Contains(metrics, w) {
						return fmt.Errorf("/metrics lacks %s", w)
					}
				}
				return nil
			})
		})
	}
}
