// Command bench measures the webhook path end to end, all real processes on loopback:
// HTTP posters -> webhook gateway -> gRPC stream -> gateway-client -> CloudEvent over HTTP ->
// sensor, against baselines measured in the same run with the same posters: a bare net/http
// handler that answers 200 (one hop); a relay that POSTs each body to the same sensor before
// it answers (two hops); and, unless -benthos=false, Benthos doing the relay's job with its
// http_server input and http_client output. It prints events/s, end-to-end latency, events
// lost, the gateway's and the client's memory and CPU, and the sensor's and the posters' CPU,
// with ratios to the baselines. The gateway path runs with the client's default flags and,
// as the "before" of acknowledged delivery, with --ack-window 0 (gateway-a0), plus the
// variants below.
//
//	go run ./tools/bench [-posters 64] [-duration 3s] [-rate 1000] [-profile DIR] [-benthos=false] [-extra "[ENV=VALUE...] CLIENT FLAGS"]...
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/eventgate/eventgate/pkg/freeport"
)

type options struct {
	posters      int
	duration     time.Duration
	rate         int
	rateDuration time.Duration
	size         int
	profileDir   string
	keep         bool
	concurrency  int
	batchSize    int
	rounds       int
	extra        []string // environment and client flags of the extra paths
	benthos      bool
}

func main() {
	var o options
	serve := flag.String("serve", "", "internal: run a baseline server (bare or relay) instead of the bench")
	listen := flag.String("listen", "", "internal: the baseline's address")
	sinkURL := flag.String("sink", "", "internal: the relay's sink URL")
	flag.IntVar(&o.posters, "posters", 64, "concurrent HTTP posters")
	flag.DurationVar(&o.duration, "duration", 3*time.Second, "closed-loop (maximum throughput) time per path")
	flag.IntVar(&o.rate, "rate", 1000, "events per second of the fixed-rate (latency) runs; 0 skips them")
	flag.DurationVar(&o.rateDuration, "rate-duration", 3*time.Second, "fixed-rate time per path")
	flag.IntVar(&o.size, "size", 256, "bytes per posted body")
	flag.StringVar(&o.profileDir, "profile", "", "write CPU and heap profiles of the gateway and the client during the gateway's closed-loop run to this folder")
	flag.IntVar(&o.rounds, "rounds", 3, "the paths take turns this many times in each kind of run")
	flag.IntVar(&o.concurrency, "delivery-concurrency", 1, "the gateway-client's --delivery-concurrency for the third gateway path (1: one delivery at a time per sensor, the in-order path)")
	flag.IntVar(&o.batchSize, "batch-size", 0, "the gateway-client's --batch-size for the fourth gateway path (default: -posters)")
	flag.Func("extra", "the gateway-client's flags for one more gateway path, gateway-x<n> (e.g. \"--ack-linger 0\"), to compare in the same run, after NAME=VALUE words that go into the gateway's and the client's environment (e.g. \"GOMAXPROCS=1\"); repeatable", func(v string) error {
		o.extra = append(o.extra, v)
		return nil
	})
	flag.BoolVar(&o.benthos, "benthos", true, "run Benthos (http_server -> http_client) as a baseline too; it is built once from the Go module proxy into the user's cache folder")
	flag.BoolVar(&o.keep, "keep", false, "keep the binaries and the processes' logs (their folder is printed)")
	flag.Parse()

	if *serve != "" {
		if err := serveBaseline(*serve, *listen, *sinkURL); err != nil {
			fmt.Fprintln(os.Stderr, "bench baseline:", err)
			os.Exit(1)
		}
		return
	}
	if o.batchSize == 0 {
		o.batchSize = o.posters
	}
	if o.posters < 1 || o.duration <= 0 || o.rate < 0 || o.size < 0 || o.concurrency < 1 || o.batchSize < 1 || o.rounds < 1 {
		fmt.Fprintln(os.Stderr, "bench: -posters and -duration must be positive, -rate and -size not negative")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// path is the running programs and where to post.
type path struct {
	sensor, bare, relay, benthos  *proc
	bareURL, relayURL, benthosURL string
	// gateways: the client's default, the same without acknowledgements (--ack-window 0,
	// the "before" of acknowledged delivery), then with another delivery concurrency (one
	// at a time: the in-order path) and with batches.
	gateways []*gatewayPath
	arrivals *arrivals
}

// unackedPath is the client's default flags but for --ack-window 0: events go out on
// StartEventSource and the gateway answers at hand-off, as before acknowledged delivery. The
// report gives the default path's figures as ratios to it.
const unackedPath = "gateway-a0"

// gatewayPath is one webhook gateway and its gateway-client.
type gatewayPath struct {
	name                      string
	webhook, client           *proc
	url                       string
	webhookPprof, clientPprof string
}

func run(ctx context.Context, o options) error {
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "eventgate-bench-")
	if err != nil {
		return err
	}
	if o.keep {
		fmt.Printf("binaries and logs: %s\n", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	fmt.Printf("building the webhook gateway, the gateway-client and the sensor...\n")
	bins, err := build(root, dir, o.profileDir != "")
	if err != nil {
		return err
	}
	if o.benthos {
		// A baseline the bench can do without: one that cannot be built is said and left out.
		if bins.benthos, err = buildBenthos(root); err != nil {
			fmt.Printf("warning: no Benthos baseline in this run (-benthos=false skips it): %v\n", err)
		}
	}
	p, err := startPath(dir, bins, o)
	defer p.stop()
	if err != nil {
		return err
	}

	// At rest: the sources are active, nothing has been posted yet.
	time.Sleep(500 * time.Millisecond)
	rest := map[*proc]usage{}
	for _, pr := range []*proc{p.bare, p.relay, p.benthos} {
		if pr == nil {
			continue
		}
		if rest[pr], err = pr.usage(); err != nil {
			return err
		}
	}
	// The sensor and the bench's own posters share the 2 cores with the path: their CPU
	// per event is reported beside the path's, since a path whose events cost them more
	// leaves itself less.
	self := &proc{name: "bench", cmd: &exec.Cmd{Process: &os.Process{Pid: os.Getpid()}}}
	targets := []target{
		{name: "bare", url: p.bareURL, procs: []*proc{p.bare, self}},
		{name: "relay", url: p.relayURL, e2e: true, procs: []*proc{p.relay, p.sensor, self}},
	}
	if p.benthos != nil {
		targets = append(targets, target{name: "benthos", url: p.benthosURL, e2e: true, procs: []*proc{p.benthos, p.sensor, self}})
	}
	for _, g := range p.gateways {
		for _, pr := range []*proc{g.webhook, g.client} {
			if rest[pr], err = pr.usage(); err != nil {
				return err
			}
		}
		targets = append(targets, target{name: g.name, url: g.url, e2e: true, procs: []*proc{g.webhook, g.client, p.sensor, self}, gateway: g})
	}

	client := newPosterClient(o.posters)
	fmt.Printf("%d posters, %s closed loop and %s at %d events/s per path in %d rounds, %d-byte bodies\n",
		o.posters, o.duration, o.rateDuration, o.rate, o.rounds, o.size)
	fmt.Printf("gateway: the client's default flags; %s: --ack-window 0 (unacknowledged, StartEventSource); %s: --delivery-concurrency %d; %s: --batch-size %d\n",
		p.gateways[1].name, p.gateways[2].name, o.concurrency, p.gateways[3].name, o.batchSize)
	for i, flags := range o.extra {
		fmt.Printf("gateway-x%d: %s\n", i+1, flags)
	}
	fmt.Println()

	for _, t := range targets {
		// Warm-up: connections open, pools and heaps grown, before anything is measured.
		post(ctx, client, t.url, t.name+"-warmup", load{posters: o.posters, duration: 300 * time.Millisecond, size: o.size})
	}
	// Each path's time is cut into rounds that take turns, so that a change in the
	// machine's load during the bench weighs on every path alike.
	closed := make([]*result, len(targets))
	fixed := make([]*result, 0, len(targets))
	for round := range o.rounds {
		for i, t := range targets {
			var prof *profiling
			if g := t.gateway; g != nil && o.profileDir != "" && round == 0 {
				prof = startProfiles(o.profileDir, o.duration/time.Duration(o.rounds), map[string]string{g.webhook.name: g.webhookPprof, g.client.name: g.clientPprof})
			}
			l := load{posters: o.posters, duration: o.duration / time.Duration(o.rounds), size: o.size}
			r, err := measure(ctx, client, p.arrivals, t, fmt.Sprintf("%s-max-%d", t.name, round), l)
			if err != nil {
				return err
			}
			if prof != nil {
				if err := prof.wait(); err != nil {
					return err
				}
			}
			closed[i] = closed[i].merge(r)
			if ctx.Err() != nil {
				return ctx.Err()
			}
		}
	}
	if o.rate > 0 {
		fixed = fixed[:len(targets)]
		for round := range o.rounds {
			for i, t := range targets {
				l := load{posters: o.posters, duration: o.rateDuration / time.Duration(o.rounds), rate: o.rate, size: o.size}
				r, err := measure(ctx, client, p.arrivals, t, fmt.Sprintf("%s-rate-%d", t.name, round), l)
				if err != nil {
					return err
				}
				fixed[i] = fixed[i].merge(r)
				if ctx.Err() != nil {
					return ctx.Err()
				}
			}
		}
	}
	mem := map[*proc][2]usage{}
	for pr, u := range rest {
		end, _ := pr.usage()
		mem[pr] = [2]usage{u, end}
	}
	report(os.Stdout, o, closed, fixed, p.gateways, mem)
	if errs := p.arrivals.errors; errs > 0 {
		fmt.Printf("\nwarning: %d sensor output lines could not be read\n", errs)
	}
	return nil
}

// startPath starts the sensor, the two baselines, the webhook gateway and the client, and
// waits until each answers.
func startPath(dir string, bins binaries, o options) (*path, error) {
	p := &path{arrivals: newArrivals()}
	addr := map[string]string{}
	for _, name := range []string{"sensor", "bare", "relay", "benthos"} {
		a, err := freeport.Addr()
		if err != nil {
			return p, err
		}
		addr[name] = a
	}
	sensorURL := "http://" + addr["sensor"] + "/"
	p.bareURL = "http://" + addr["bare"] + "/"
	p.relayURL = "http://" + addr["relay"] + "/"

	// The sensor prints every event as a JSON line; the bench reads its stdout.
	out, in, err := os.Pipe()
	if err != nil {
		return p, err
	}
	p.sensor, err = start("sensor", bins.sensor, []string{"--http", addr["sensor"], "--output", "json"}, []string{"LOG_LEVEL=warn"}, dir, in)
	in.Close()
	if err != nil {
		out.Close()
		return p, err
	}
	go p.arrivals.read(out)

	self, err := os.Executable()
	if err != nil {
		return p, err
	}
	if p.bare, err = start("bare", self, []string{"-serve", "bare", "-listen", addr["bare"]}, nil, dir, nil); err != nil {
		return p, err
	}
	if p.relay, err = start("relay", self, []string{"-serve", "relay", "-listen", addr["relay"], "-sink", sensorURL}, nil, dir, nil); err != nil {
		return p, err
	}
	if bins.benthos != "" {
		p.benthosURL = "http://" + addr["benthos"] + "/"
		if p.benthos, err = startBenthos(dir, bins.benthos, addr["benthos"], sensorURL, benthosInFlight); err != nil {
			return p, err
		}
	}
	type variant struct {
		name string
		env  []string // NAME=VALUE for the gateway and the client
		args []string // the gateway-client's flags that make this path
	}
	variants := []variant{
		{"gateway", nil, nil},
		{unackedPath, nil, []string{"--ack-window", "0"}},
		{fmt.Sprintf("gateway-c%d", o.concurrency), nil, []string{"--delivery-concurrency", strconv.Itoa(o.concurrency)}},
		{fmt.Sprintf("gateway-b%d", o.batchSize), nil, []string{"--batch-size", strconv.Itoa(o.batchSize)}},
	}
	for i, extra := range o.extra {
		env, args := splitEnv(strings.Fields(extra))
		variants = append(variants, variant{fmt.Sprintf("gateway-x%d", i+1), env, args})
	}
	for _, g := range variants {
		gp, err := startGateway(dir, bins, g.name, sensorURL, g.env, g.args, o.profileDir != "")
		if gp != nil {
			p.gateways = append(p.gateways, gp)
		}
		if err != nil {
			return p, err
		}
	}

	type wait struct {
		what  string
		check func() error
	}
	waits := []wait{
		{"sensor", answers("GET", "http://"+addr["sensor"]+"/healthz", 200)},
		{"bare baseline", answers("GET", p.bareURL, 200)},
		{"relay baseline", answers("GET", "http://"+addr["relay"]+"/", 200)}, // an empty event, of no run
	}
	if p.benthos != nil {
		waits = append(waits, wait{"Benthos baseline", answers("GET", p.benthosURL, 405)}) // it takes POST only
	}
	for _, g := range p.gateways {
		// The route is active once a method it does not take is answered 405.
		waits = append(waits, wait{"webhook route of " + g.name, answers("GET", g.url, 405)})
	}
	for _, w := range waits {
		if err := waitFor(w.what, 30*time.Second, w.check); err != nil {
			return p, fmt.Errorf("%w (logs in %s)", err, dir)
		}
	}
	return p, nil
}

func (p *path) stop() {
	// The client first, so that the gateway's stream ends before the gateway does.
	var procs []*proc
	for _, g := range p.gateways {
		procs = append(procs, g.client, g.webhook)
	}
	for _, pr := range append(procs, p.benthos, p.relay, p.bare, p.sensor) {
		if pr != nil {
			pr.stop()
		}
	}
}

// startGateway starts a webhook gateway with one source, and a gateway-client in local mode
// that delivers its events to sensorURL.
func startGateway(dir string, bins binaries, name, sensorURL string, extraEnv, clientArgs []string, profile bool) (*gatewayPath, error) {
	addr := map[string]string{}
	for _, n := range []string{"webhook", "grpc", "metrics", "webhookPprof", "clientPprof"} {
		a, err := freeport.Addr()
		if err != nil {
			return nil, err
		}
		addr[n] = a
	}
	_, webhookPort, _ := splitPort(addr["webhook"])
	_, grpcPort, _ := splitPort(addr["grpc"])
	g := &gatewayPath{name: name, url: "http://" + addr["webhook"] + "/bench"}
	if profile {
		g.webhookPprof, g.clientPprof = addr["webhookPprof"], addr["clientPprof"]
	}
	suffix := strings.TrimPrefix(name, "gateway")
	env := []string{"GATEWAY_SERVER_HOST=127.0.0.1", "GATEWAY_SERVER_PORT=" + grpcPort, "GATEWAY_NAME=webhook-gateway",
		"LOG_LEVEL=warn", "EVENTGATE_PPROF=" + g.webhookPprof}
	env = append(env, extraEnv...)
	var err error
	if g.webhook, err = start("webhook"+suffix, bins.webhook, nil, env, dir, nil); err != nil {
		return nil, err
	}
	gatewayFile, sourcesFile := filepath.Join(dir, name+".yaml"), filepath.Join(dir, name+"-event-source.yaml")
	if err := os.WriteFile(gatewayFile, []byte(benchGateway), 0o644); err != nil {
		return g, err
	}
	if err := os.WriteFile(sourcesFile, []byte(fmt.Sprintf(benchSources, webhookPort)), 0o644); err != nil {
		return g, err
	}
	args := []string{"--gateway", gatewayFile, "--event-sources", sourcesFile, "--server", addr["grpc"],
		"--sensor", "bench-sensor=" + sensorURL, "--metrics-address", addr["metrics"]}
	args = append(args, clientArgs...)
	g.client, err = start("gateway-client"+suffix, bins.client, args, append([]string{"LOG_LEVEL=warn", "EVENTGATE_PPROF=" + g.clientPprof}, extraEnv...), dir, nil)
	return g, err
}

// splitEnv splits an -extra value's words into the NAME=VALUE words it starts with and the
// client flags after them.
func splitEnv(words []string) (env, args []string) {
	for i, w := range words {
		if strings.HasPrefix(w, "-") || !strings.Contains(w, "=") {
			return words[:i], words[i:]
		}
	}
	return words, nil
}

func splitPort(addr string) (string, string, error) {
	for i := len(addr) - 1; i >= 0; i-- {
		if addr[i] == ':' {
			return addr[:i], addr[i+1:], nil
		}
	}
	return "", "", errors.New("no port in " + addr)
}

const benchGateway = `apiVersion: argoproj.io/v1alpha1
kind: Gateway
metadata:
  name: webhook-gateway
  labels:
    gateways.argoproj.io/gateway-controller-instanceid: argo-events
    argo-events-gateway-version: v0.10
spec:
  type: webhook
  eventSource: webhook-event-source
  processorPort: "9330"
  eventProtocol:
    type: HTTP
    http:
      port: "9300"
  watchers:
    sensors:
      - name: bench-sensor
`

const benchSources = `apiVersion: v1
kind: ConfigMap
metadata:
  name: webhook-event-source
  labels:
    argo-events-event-source-version: v0.10
data:
  bench: |-
    endpoint: /bench
    port: "%s"
    method: POST
`

// profiling fetches CPU profiles (and then heap profiles) from pprof servers.
type profiling struct {
	done chan error
}

func startProfiles(dir string, d time.Duration, addrs map[string]string) *profiling {
	p := &profiling{done: make(chan error, 1)}
	seconds := max(int(d/time.Second)-1, 1)
	go func() {
		errs := make(chan error, len(addrs))
		for name, addr := range addrs {
			go func() {
				err := fetch("http://"+addr+fmt.Sprintf("/debug/pprof/profile?seconds=%d", seconds), filepath.Join(dir, name+".cpu.pprof"))
				if err == nil {
					err = fetch("http://"+addr+"/debug/pprof/heap", filepath.Join(dir, name+".heap.pprof"))
				}
				errs <- err
			}()
		}
		var all []error
		for range addrs {
			all = append(all, <-errs)
		}
		p.done <- errors.Join(all...)
	}()
	return p
}

func (p *profiling) wait() error { return <-p.done }

func fetch(url, file string) error {
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return err
	}
	resp, err := http.Get(url)
	if err != nil {
		return fmt.Errorf("profile %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("profile %s: %s", url, resp.Status)
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
