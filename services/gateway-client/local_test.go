package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/credentials"

	"github.com/eventgate/eventgate/pkg/config"
	"github.com/eventgate/eventgate/pkg/sensorsink"
	"github.com/eventgate/eventgate/pkg/server"
	"github.com/eventgate/eventgate/pkg/testenv"
)

// everyGateway is a real gateway on the framework: each source emits its name's events
// every `every` until cancelled.
type everyGateway struct{}

type everyConfig struct {
	Every string `json:"every"`
}

func (everyGateway) Type() string { return "every" }

func (everyGateway) Parse(_, data string) (server.Source, error) {
	var cfg everyConfig
	if err := config.Decode("every", data, &cfg); err != nil {
		return nil, err
	}
	d, err := time.ParseDuration(cfg.Every)
	if err != nil || d <= 0 {
		return nil, fmt.Errorf("every.every: %q is not a positive duration", cfg.Every)
	}
	return everySource(d), nil
}

type everySource time.Duration

func (s everySource) Start(ctx context.Context, emit server.Emit) error {
	t := time.NewTicker(time.Duration(s))
	defer t.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if err := emit(ctx, server.Event{Payload: []byte(strconv.Itoa(i))}); err != nil {
			return nil
		}
	}
}

var gatewayManifest = testenv.GatewayManifest("every", "every-sensor")

// sourcesManifest is an event-source ConfigMap manifest of sources.
func sourcesManifest(sources map[string]string) []byte {
	manifest := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: every-event-source\ndata:\n"
	for k, v := range sources {
		manifest += "  " + k + ": |-\n    " + v + "\n"
	}
	return []byte(manifest)
}

func writeSources(t *testing.T, path string, sources map[string]string) {
	t.Helper()
	// Replace by rename, as editors and kubectl-style tools do.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, sourcesManifest(sources), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func countBySubject(s *testenv.Sensor) map[string]int {
	out := map[string]int{}
	for _, ev := range s.Received() {
		out[ev.Subject()]++
	}
	return out
}

func TestLocalModeFollowsTheEventSourcesFile(t *testing.T) {
	gw := testenv.StartGateway(t, everyGateway{})
	sensor := testenv.StartSensor(t, sensorsink.Endpoints{})
	dir := t.TempDir()
	gwFile, cmFile := filepath.Join(dir, "gateway.yaml"), filepath.Join(dir, "event-sources.yaml")
	if err := os.WriteFile(gwFile, []byte(gatewayManifest), 0o644); err != nil {
		t.Fatal(err)
	}
	writeSources(t, cmFile, map[string]string{"a": "every: 5ms", "garbage": "every: [oops"})

	startLocal(t, "--gateway", gwFile, "--event-sources", cmFile, "--server", gw.Addr,
		"--sensor", "every-sensor="+sensor.URL, "--metrics-address", "")

	// a runs despite its garbage sibling.
	testenv.Eventually(t, 10*time.Second, 10*time.Millisecond, func() error {
		if n := countBySubject(sensor)["a"]; n < 5 {
			return fmt.Errorf("%d events from a", n)
		}
		return nil
	})
	for _, ev := range sensor.Received() {
		if ev.Source() != "every-gateway" || ev.Type() != "every" {
			t.Fatalf("CloudEvent %s", ev)
		}
	}

	// Edit the file: a goes, b comes.
	writeSources(t, cmFile, map[string]string{"b": "every: 5ms"})
	testenv.Eventually(t, 10*time.Second, 10*time.Millisecond, func() error {
		if n := countBySubject(sensor)["b"]; n < 5 {
			return fmt.Errorf("%d events from b", n)
		}
		return nil
	})
	before := countBySubject(sensor)["a"]
	testenv.Eventually(t, 10*time.Second, 10*time.Millisecond, func() error {
		if n := countBySubject(sensor)["b"]; n < 20 {
			return fmt.Errorf("%d events from b", n)
		}
		return nil
	})
	// a was stopped: at most the events in flight at the edit arrived after it.
	if after := countBySubject(sensor)["a"]; after > before+2 {
		t.Errorf("a still delivering after its removal: %d -> %d", before, after)
	}
}

func noEnv(string) string { return "" }

func TestFlagsNameWhatIsMissing(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"no mode", nil, nil, "either --gateway and --event-sources (local mode) or --gateway-name (Kubernetes mode) is required"},
		{"half local", []string{"--gateway", "g"}, nil, "--event-sources is required with --gateway"},
		{"both modes", []string{"--gateway", "g", "--event-sources", "e", "--gateway-name", "n"}, nil,
			"--gateway-name (Kubernetes mode) cannot be used with --gateway and --event-sources (local mode)"},
		{"queue", []string{"--gateway", "g", "--event-sources", "e", "--queue-size", "0"}, nil, "--queue-size must be positive, got 0"},
		{"delivery concurrency", []string{"--gateway", "g", "--event-sources", "e", "--delivery-concurrency", "0"}, nil, "--delivery-concurrency must be positive, got 0"},
		{"batch size", []string{"--gateway", "g", "--event-sources", "e", "--batch-size", "-1"}, nil, "--batch-size must be positive, got -1"},
		{"ack linger", []string{"--gateway", "g", "--event-sources", "e", "--ack-linger", "1s"}, nil, "--ack-linger must be within 0..100ms, got 1s"},
		{"sensor", []string{"--gateway", "g", "--event-sources", "e", "--sensor", "ftp://x"}, nil, `invalid value "ftp://x" for flag -sensor: "ftp://x" is not an http(s) URL`},
		{"server", []string{"--gateway-name", "n", "--server", "calendar=localhost"}, nil, `invalid value "calendar=localhost" for flag -server: "calendar=localhost": want [TYPE=]HOST:PORT`},
		{"server type", []string{"--gateway-name", "n", "--server", "=localhost:1"}, nil, `invalid value "=localhost:1" for flag -server: "=localhost:1": empty TYPE before '='`},
		{"metrics address without a port", []string{"--gateway-name", "n", "--metrics-address", "9301"}, nil,
			`--metrics-address must be HOST:PORT (e.g. 127.0.0.1:9301, or :9301 for every interface), got "9301"`},
		{"metrics address with a bad port", []string{"--gateway-name", "n", "--metrics-address", "127.0.0.1:http"}, nil,
			`--metrics-address must be HOST:PORT (e.g. 127.0.0.1:9301, or :9301 for every interface), got "127.0.0.1:http"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseFlags(tc.args, func(k string) string { return tc.env[k] })
			if err == nil || err.Error() != tc.want {
				t.Errorf("parseFlags(%q) = %v, want %q", tc.args, err, tc.want)
			}
		})
	}
}

// The gateway-controller sets GATEWAY_NAME and GATEWAY_NAMESPACE in the pod: that alone is
// Kubernetes mode; flags win over the environment.
func TestFlagsTakeThePodEnvironment(t *testing.T) {
	env := map[string]string{"GATEWAY_NAME": "gw", "GATEWAY_NAMESPACE": "ns", "KUBECONFIG": "/k"}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"env", nil, "kube=true name=gw ns=ns kubeconfig=/k servers=[]"},
		{"flags win", []string{"--gateway-name", "other", "--namespace", "x", "--server", "127.0.0.1:1", "--server", "cal=h:2"}, "kube=true name=other ns=x kubeconfig=/k servers=[127.0.0.1:1 cal=h:2]"},
		{"local mode ignores GATEWAY_NAME", []string{"--gateway", "g", "--event-sources", "e"}, "kube=false name= ns=ns kubeconfig=/k servers=[]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := parseFlags(tc.args, func(k string) string { return env[k] })
			if err != nil {
				t.Fatal(err)
			}
			got := fmt.Sprintf("kube=%t name=%s ns=%s kubeconfig=%s servers=%v", cfg.kubernetesMode(), cfg.gatewayName, cfg.namespace, cfg.kubeconfig, cfg.servers)
			if got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
}

// A gateway server outside the client's pod serves over TLS and asks for a client
// certificate: the client dials it with --server-tls-ca, --server-tls-cert, --server-tls-key.
func TestLocalModeDialsServersOverMutualTLS(t *testing.T) {
	ca := testenv.NewCA(t)
	srvCert, clientCert := ca.ServerCert(t), ca.ClientCert(t, "gateway-client")
	tlsConfig, err := server.Env{TLSCertFile: srvCert.CertPath, TLSKeyFile: srvCert.KeyPath, TLSClientCAFile: ca.Path}.TLSConfig()
	if err != nil {
		t.Fatal(err)
	}
	gw := testenv.StartGateway(t, everyGateway{}, server.WithTLS(tlsConfig))
	sensor := testenv.StartSensor(t, sensorsink.Endpoints{})
	dir := t.TempDir()
	gwFile, cmFile := filepath.Join(dir, "gateway.yaml"), filepath.Join(dir, "event-sources.yaml")
	if err := os.WriteFile(gwFile, []byte(gatewayManifest), 0o644); err != nil {
		t.Fatal(err)
	}
	writeSources(t, cmFile, map[string]string{"a": "every: 5ms"})

	startLocal(t, "--gateway", gwFile, "--event-sources", cmFile, "--server", gw.Addr,
		"--sensor", "every-sensor="+sensor.URL, "--metrics-address", "",
		"--server-tls-ca", ca.Path, "--server-tls-cert", clientCert.CertPath, "--server-tls-key", clientCert.KeyPath)
	testenv.Eventually(t, 10*time.Second, 10*time.Millisecond, func() error {
		if n := countBySubject(sensor)["a"]; n < 5 {
			return fmt.Errorf("%d events from a", n)
		}
		return nil
	})
}

func TestServerTLSFlags(t *testing.T) {
	ca := testenv.NewCA(t)
	client := ca.ClientCert(t, "gateway-client")
	missing := filepath.Join(t.TempDir(), "missing.pem")
	for _, tc := range []struct {
		name string
		args []string
		want string // the error of parseFlags, or else of credentials
	}{
		{"cert without key", []string{"--server-tls-cert", client.CertPath}, "--server-tls-key is required with --server-tls-cert"},
		{"key without cert", []string{"--server-tls-key", client.KeyPath}, "--server-tls-cert is required with --server-tls-key"},
		{"CA missing", []string{"--server-tls-ca", missing}, "--server-tls-ca: open " + missing + ": no such file or directory"},
		{"CA not PEM", []string{"--server-tls-ca", client.KeyPath}, "--server-tls-ca: no PEM certificate in " + client.KeyPath},
		{"key not the cert's", []string{"--server-tls-cert", client.CertPath, "--server-tls-key", ca.ClientCert(t, "other").KeyPath},
			"--server-tls-cert, --server-tls-key: tls: private key does not match public key"},
		{"CA only: TLS without a client certificate", []string{"--server-tls-ca", ca.Path}, ""},
		{"everything", []string{"--server-tls-ca", ca.Path, "--server-tls-cert", client.CertPath, "--server-tls-key", client.KeyPath}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := parseFlags(append([]string{"--gateway-name", "n"}, tc.args...), noEnv)
			if err == nil {
				var creds credentials.TransportCredentials
				creds, err = cfg.serverTLS.credentials()
				if err == nil && creds.Info().SecurityProtocol != "tls" {
					t.Errorf("credentials: %q, want tls", creds.Info().SecurityProtocol)
				}
			}
			if got := fmt.Sprint(err); (tc.want == "" && err != nil) || (tc.want != "" && got != tc.want) {
				t.Errorf("got %v, want %q", err, tc.want)
			}
		})
	}
	t.Run("no flags: plaintext", func(t *testing.T) {
		creds, err := serverTLS{}.credentials()
		if err != nil || creds.Info().SecurityProtocol != "insecure" {
			t.Errorf("credentials = %v, %v; want insecure", creds, err)
		}
	})
}

// startLocal runs the client in local mode with the command line args until the test ends,
// and fails the test if it then returns an error.
func startLocal(t *testing.T, args ...string) {
	t.Helper()
	cfg, err := parseFlags(args, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runLocal(ctx, cfg, testenv.Logger(t)) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("runLocal: %v", err)
		}
	})
}

// A --metrics-address another process holds stops the client at start, with the flag
// named: running on without /healthz would have the liveness probe restart it for ever.
func TestMetricsAddressInUseStopsTheStart(t *testing.T) {
	gw := testenv.StartGateway(t, everyGateway{})
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { taken.Close() })
	dir := t.TempDir()
	gwFile, cmFile := filepath.Join(dir, "gateway.yaml"), filepath.Join(dir, "event-sources.yaml")
	if err := os.WriteFile(gwFile, []byte(gatewayManifest), 0o644); err != nil {
		t.Fatal(err)
	}
	writeSources(t, cmFile, map[string]string{"a": "every: 5ms"})
	cfg, err := parseFlags([]string{"--gateway", gwFile, "--event-sources", cmFile, "--server", gw.Addr,
		"--sensor", "every-sensor=http://127.0.0.1:1/", "--metrics-address", taken.Addr().String()}, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = runLocal(ctx, cfg, testenv.Logger(t))
	if err == nil || !strings.Contains(err.Error(), "--metrics-address") || !strings.Contains(err.Error(), "address already in use") {
		t.Errorf("runLocal = %v, want the taken --metrics-address named", err)
	}
	if ctx.Err() != nil {
		t.Error("runLocal ran until the deadline instead of stopping at start")
	}
}
