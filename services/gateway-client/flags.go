package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/eventgate/eventgate/pkg/dispatch"
	"github.com/eventgate/eventgate/services/gateway-client/supervisor"
)

// clientConfig is the client's command line. Local mode reads the Gateway and its event sources
// from files (--gateway, --event-sources); Kubernetes mode reads them from the API server
// (--gateway-name, or GATEWAY_NAME as the gateway-controller sets it in the pod).
type clientConfig struct {
	gatewayFile      string
	eventSourcesFile string

	gatewayName string
	kubeconfig  string

	namespace string
	servers   serverAddrs
	sensors   sensorURLs
	delivery  deliveryFlags
	observe   string
	queueSize int
	// deliveryConcurrency is dispatch.Options.Concurrency: deliveries in flight per sensor.
	deliveryConcurrency int
	// batchSize is dispatch.Options.BatchSize: events one delivery may carry.
	batchSize int
	// ackWindow is supervisor.Options.AckWindow; 0 runs every source unacknowledged.
	ackWindow int
	// ackLinger is supervisor.Options.AckLinger, 0 meaning none.
	ackLinger time.Duration
	// serverTLS is how the gateway servers are dialled: plaintext unless a flag is set.
	serverTLS serverTLS

	// restartBackoff spaces restarts of broken sources (the supervisor's default when zero);
	// tests shorten it.
	restartBackoff dispatch.Backoff
	// statusResync is how often Kubernetes mode reads the Gateway's status nodes back, to
	// write again what someone else changed (the nodeWriter's default when zero); tests
	// shorten it.
	statusResync time.Duration
}

func (c clientConfig) kubernetesMode() bool { return c.gatewayFile == "" && c.eventSourcesFile == "" }

// parseFlags reads the command line; getenv supplies the pod's environment (GATEWAY_NAME,
// GATEWAY_NAMESPACE, KUBECONFIG) as defaults.
func parseFlags(args []string, getenv func(string) string) (clientConfig, error) {
	cfg := clientConfig{sensors: sensorURLs{}}
	fs := flag.NewFlagSet("gateway-client", flag.ContinueOnError)
	fs.StringVar(&cfg.gatewayFile, "gateway", "", "local mode: Gateway manifest (YAML, as applied to Kubernetes)")
	fs.StringVar(&cfg.eventSourcesFile, "event-sources", "", "local mode: event-source ConfigMap manifest, watched for changes")
	fs.StringVar(&cfg.gatewayName, "gateway-name", getenv("GATEWAY_NAME"), "Kubernetes mode: the Gateway to run (default $GATEWAY_NAME)")
	fs.StringVar(&cfg.kubeconfig, "kubeconfig", getenv("KUBECONFIG"), "Kubernetes mode: kubeconfig file (default $KUBECONFIG, else the pod's service account)")
	namespace := getenv("GATEWAY_NAMESPACE")
	if namespace == "" {
		namespace = "default"
	}
	fs.StringVar(&cfg.namespace, "namespace", namespace, "the Gateway's namespace in Kubernetes mode; locally, the namespace of sensor service addresses (default $GATEWAY_NAMESPACE, else default)")
	fs.Var(&cfg.servers, "server", "[TYPE=]ADDR: a gateway server; repeatable, each source runs on the first that accepts it; TYPE becomes its events' CloudEvents type (default 127.0.0.1:<spec.processorPort>)")
	fs.Var(cfg.sensors, "sensor", "[NAME=]URL: where the watcher NAME (or an extra sensor) receives events; repeatable")
	cfg.delivery.register(fs)
	fs.StringVar(&cfg.observe, "metrics-address", "127.0.0.1:9301", "address of /metrics, /healthz and /status (empty: off)")
	fs.IntVar(&cfg.queueSize, "queue-size", dispatch.DefaultQueueSize, "events queued per sensor before the event streams are held back")
	fs.IntVar(&cfg.deliveryConcurrency, "delivery-concurrency", defaultDeliveryConcurrency, "deliveries in flight per sensor, each of a different ordering key: events of one key (a source's events without one share its order) reach a sensor in order whatever the concurrency")
	fs.IntVar(&cfg.batchSize, "batch-size", 1, "events one HTTP delivery may carry, in order, when they are waiting (CloudEvents batch mode: only for sensors that accept it; 1 sends each alone, as v0.10 sensors expect)")
	fs.IntVar(&cfg.ackWindow, "ack-window", 256, "unacknowledged events per source: each event is acknowledged to its gateway server only once every sensor took it (StreamEventSource; StartEventSource, unacknowledged, on servers without it); 0: never acknowledge, StartEventSource only")
	fs.DurationVar(&cfg.ackLinger, "ack-linger", supervisor.DefaultAckLinger, "how long an acknowledgement may wait for others of its source to share its message while more of its events are in flight (an ack with none in flight goes at once); 0: send only what is waiting")
	fs.StringVar(&cfg.serverTLS.ca, "server-tls-ca", "", "dial the gateway servers over TLS, verifying them with the CAs in this PEM file (default: plaintext; the system's CAs with --server-tls-cert)")
	fs.StringVar(&cfg.serverTLS.cert, "server-tls-cert", "", "dial the gateway servers over TLS, presenting this client certificate (PEM; with --server-tls-key)")
	fs.StringVar(&cfg.serverTLS.key, "server-tls-key", "", "the key of --server-tls-cert (PEM)")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	gatewayNameFlag := false
	fs.Visit(func(f *flag.Flag) { gatewayNameFlag = gatewayNameFlag || f.Name == "gateway-name" })

	var problems []error
	switch {
	case !cfg.kubernetesMode():
		if cfg.gatewayFile == "" {
			problems = append(problems, errors.New("--gateway is required with --event-sources"))
		}
		if cfg.eventSourcesFile == "" {
			problems = append(problems, errors.New("--event-sources is required with --gateway"))
		}
		if gatewayNameFlag {
			problems = append(problems, errors.New("--gateway-name (Kubernetes mode) cannot be used with --gateway and --event-sources (local mode)"))
		}
		cfg.gatewayName = ""
	case cfg.gatewayName == "":
		problems = append(problems, errors.New("either --gateway and --event-sources (local mode) or --gateway-name (Kubernetes mode) is required"))
	}
	if cfg.queueSize <= 0 {
		problems = append(problems, fmt.Errorf("--queue-size must be positive, got %d", cfg.queueSize))
	}
	if cfg.deliveryConcurrency <= 0 {
		problems = append(problems, fmt.Errorf("--delivery-concurrency must be positive, got %d", cfg.deliveryConcurrency))
	}
	if cfg.ackWindow < 0 || cfg.ackWindow > maxAckWindow {
		problems = append(problems, fmt.Errorf("--ack-window must be within 0..%d, got %d", maxAckWindow, cfg.ackWindow))
	}
	if cfg.ackLinger < 0 || cfg.ackLinger > maxAckLinger {
		problems = append(problems, fmt.Errorf("--ack-linger must be within 0..%s, got %s", maxAckLinger, cfg.ackLinger))
	}
	if cfg.batchSize <= 0 {
		problems = append(problems, fmt.Errorf("--batch-size must be positive, got %d", cfg.batchSize))
	}
	if cfg.observe != "" {
		if _, port, err := net.SplitHostPort(cfg.observe); err != nil || !validPort(port) {
			problems = append(problems, fmt.Errorf("--metrics-address must be HOST:PORT (e.g. 127.0.0.1:9301, or :9301 for every interface), got %q", cfg.observe))
		}
	}
	if cfg.serverTLS.cert != "" && cfg.serverTLS.key == "" {
		problems = append(problems, errors.New("--server-tls-key is required with --server-tls-cert"))
	}
	if cfg.serverTLS.cert == "" && cfg.serverTLS.key != "" {
		problems = append(problems, errors.New("--server-tls-cert is required with --server-tls-key"))
	}
	return cfg, errors.Join(problems...)
}

// serverTLS is --server-tls-ca, --server-tls-cert and --server-tls-key.
type serverTLS struct{ ca, cert, key string }

// credentials reads the files once, at start; an error names the flag whose file is wrong.
func (s serverTLS) credentials() (credentials.TransportCredentials, error) {
	if s == (serverTLS{}) {
		return insecure.NewCredentials(), nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if s.ca != "" {
		pem, err := os.ReadFile(s.ca)
		if err != nil {
			return nil, fmt.Errorf("--server-tls-ca: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--server-tls-ca: no PEM certificate in %s", s.ca)
		}
	}
	if s.cert != "" {
		cert, err := tls.LoadX509KeyPair(s.cert, s.key)
		if err != nil {
			return nil, fmt.Errorf("--server-tls-cert, --server-tls-key: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return credentials.NewTLS(cfg), nil
}

// serverAddr is a gateway server from --server [TYPE=]ADDR.
type serverAddr struct{ typ, addr string }

func (s serverAddr) String() string {
	if s.typ == "" {
		return s.addr
	}
	return s.typ + "=" + s.addr
}

type serverAddrs []serverAddr

func (s *serverAddrs) String() string { return fmt.Sprint(*s) }

func (s *serverAddrs) Set(v string) error {
	typ, addr, found := strings.Cut(v, "=")
	if !found {
		typ, addr = "", v
	} else if typ == "" {
		return fmt.Errorf("%q: empty TYPE before '='", v)
	}
	if _, port, err := net.SplitHostPort(addr); err != nil || port == "" {
		return fmt.Errorf("%q: want [TYPE=]HOST:PORT", v)
	}
	*s = append(*s, serverAddr{typ: typ, addr: addr})
	return nil
}

// defaultDeliveryConcurrency lets independent events (a webhook's requests, each its own
// ordering key) overlap enough that a sensor's round trip does not cap the path, while a
// source's keyless events still go one at a time, in order.
const defaultDeliveryConcurrency = 64

// maxAckLinger keeps a mistyped --ack-linger from holding acknowledgements (and with them
// the gateways' answers upstream) for long.
const maxAckLinger = 100 * time.Millisecond

// maxAckWindow is the largest window the gateway servers grant.
const maxAckWindow = 10000

// validPort reports whether p is a TCP port number (0 lets the system choose).
func validPort(p string) bool {
	n, err := strconv.Atoi(p)
	return err == nil && n >= 0 && n <= 65535
}
