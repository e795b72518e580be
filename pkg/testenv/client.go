package testenv

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// ClientConfig says what a gateway-client started by StartClient serves.
type ClientConfig struct {
	// GatewayType is the Gateway's spec.type, which becomes the CloudEvents type.
	GatewayType string
	// Servers are the gateway servers' addresses (--server).
	Servers []string
	// Sensors are the URLs the events go to (--sensor).
	Sensors []string
	// Sources is the event-source ConfigMap's data: one event source per key.
	Sources map[string]string
	// Args are extra flags.
	Args []string
	// Env is extra environment, NAME=VALUE.
	Env []string
}

// Client is the real gateway-client binary, running in local mode for a test.
type Client struct {
	*Process
	// ObserveURL is the base URL of its /metrics, /healthz and /status.
	ObserveURL  string
	sourcesFile string
}

// StartClient runs the gateway-client (Binary "services/gateway-client") in local mode with
// a Gateway manifest named "<type>-gateway" whose watchers are the sensors (sensor-1, ...),
// and the given event sources, and returns once
// it answers /healthz. It runs until the test ends.
func StartClient(t testing.TB, cfg ClientConfig) *Client {
	t.Helper()
	bin := Binary(t, "services/gateway-client")
	dir := t.TempDir()
	gatewayFile := filepath.Join(dir, "gateway.yaml")
	sensorNames := make([]string, len(cfg.Sensors))
	for i := range cfg.Sensors {
		sensorNames[i] = fmt.Sprintf("sensor-%d", i+1)
	}
	manifest := GatewayManifest(cfg.GatewayType, sensorNames...)
	if err := os.WriteFile(gatewayFile, []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	c := &Client{sourcesFile: filepath.Join(dir, "event-sources.yaml")}
	c.SetSources(t, cfg.Sources)

	observe := FreePort(t)
	c.ObserveURL = "http://" + observe
	args := []string{"--gateway", gatewayFile, "--event-sources", c.sourcesFile, "--metrics-address", observe}
	for _, s := range cfg.Servers {
		args = append(args, "--server", s)
	}
	for i, s := range cfg.Sensors {
		args = append(args, "--sensor", fmt.Sprintf("sensor-%d=%s", i+1, s))
	}
	c.Process = StartProcess(t, bin, append(args, cfg.Args...), append([]string{"LOG_LEVEL=debug"}, cfg.Env...)...)
	Eventually(t, 30*time.Second, 20*time.Millisecond, func() error {
		if exited, err := c.Exited(); exited {
			t.Fatalf("gateway-client exited: %v\n%s", err, c.Output.String())
		}
		resp, err := http.Get(c.ObserveURL + "/healthz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%w: /healthz answered %s", errNotReady, resp.Status)
		}
		return nil
	})
	return c
}

// SetSources rewrites the event-source ConfigMap file the client watches; the client
// starts and stops sources to match.
func (c *Client) SetSources(t testing.TB, sources map[string]string) {
	t.Helper()
	keys := make([]string, 0, len(sources))
	for k := range sources {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: event-sources\n  labels:\n    argo-events-event-source-version: v0.10\ndata:\n")
	for _, k := range keys {
		fmt.Fprintf(&b, "  %s: |-\n", k)
		for _, line := range strings.Split(sources[k], "\n") {
			fmt.Fprintf(&b, "    %s\n", line)
		}
	}
	// Write then rename, as editors do, so the client never reads half a file.
	tmp := c.sourcesFile + ".tmp"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, c.sourcesFile); err != nil {
		t.Fatal(err)
	}
}

// GatewayManifest is the Gateway manifest a user would apply for a gateway of type
// gatewayType named "<type>-gateway", whose event sources are the ConfigMap
// "<type>-event-source" and whose watchers are the named sensors (over HTTP, v0.10's
// defaults for the ports).
func GatewayManifest(gatewayType string, sensors ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `apiVersion: argoproj.io/v1alpha1
kind: Gateway
metadata:
  name: %[1]s-gateway
  labels:
    gateways.argoproj.io/gateway-controller-instanceid: argo-events
    argo-events-gateway-version: v0.10
spec:
  type: %[1]s
  eventSource: %[1]s-event-source
  processorPort: "9330"
  eventProtocol:
    type: HTTP
    http:
      port: "9300"
`, gatewayType)
	if len(sensors) > 0 {
		b.WriteString("  watchers:\n    sensors:\n")
		for _, name := range sensors {
			fmt.Fprintf(&b, "      - name: %s\n", name)
		}
	}
	return b.String()
}
