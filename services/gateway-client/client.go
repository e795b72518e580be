package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"google.golang.org/grpc"

	"github.com/eventgate/eventgate/pkg/apis/gateway/v1alpha1"
	"github.com/eventgate/eventgate/pkg/cloudevent"
	"github.com/eventgate/eventgate/pkg/dispatch"
	"github.com/eventgate/eventgate/protos/gateways"
	"github.com/eventgate/eventgate/services/gateway-client/supervisor"
)

// client is what both modes run: the gateway servers' connections, the supervisor that
// keeps the sources running on them, the dispatcher that delivers their events, and the
// metrics, health and status endpoints. The modes differ only in where the sources come from
// and where their states go.
type client struct {
	sup     *supervisor.Supervisor
	servers []string
	sensors int
	close   func()
}

// startClient starts the client of gw; changed, when set, is called after every change of a
// source's status.
func startClient(ctx context.Context, cfg clientConfig, gw *v1alpha1.Gateway, log *slog.Logger, changed func()) (*client, error) {
	addrs := cfg.servers
	if len(addrs) == 0 {
		addrs = serverAddrs{{addr: "127.0.0.1:" + gw.Spec.ProcessorPort}}
	}
	tgts, err := targets(gw, cfg.namespace, cfg.sensors, cfg.delivery)
	if err != nil {
		return nil, err
	}
	if stray, watchers := strayNames(gw, cfg.sensors); len(stray) > 0 && len(watchers) > 0 {
		log.Warn("--sensor names no watcher of the Gateway: each is an extra sensor, and a watcher a misspelt name meant is reached at its in-cluster address",
			"names", stray, "watchers", watchers)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	received := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "eventgate_client_events_received_total",
		Help: "Events received from the gateway servers, by event source.",
	}, []string{"event_source"})
	reg.MustRegister(received)

	creds, err := cfg.serverTLS.credentials()
	if err != nil {
		return nil, err
	}
	var conns []*grpc.ClientConn
	closeConns := func() {
		for _, c := range conns {
			c.Close()
		}
	}
	var servers []supervisor.Server
	var names []string
	for _, a := range addrs {
		conn, err := supervisor.Dial(a.addr, creds)
		if err != nil {
			closeConns()
			return nil, err
		}
		conns = append(conns, conn)
		servers = append(servers, supervisor.Server{Name: a.String(), Type: a.typ, Conn: conn})
		names = append(names, a.String())
	}

	d := dispatch.New(tgts, dispatch.Options{QueueSize: cfg.queueSize, Concurrency: cfg.deliveryConcurrency, BatchSize: cfg.batchSize, Metrics: dispatch.NewMetrics(reg), Log: log})
	handle := func(ctx context.Context, source string, ev *gateways.Event, ack func(gateways.Ack_Outcome)) error {
		received.WithLabelValues(source).Inc()
		ceGateway := cloudevent.Gateway{Name: gw.Name, Type: gw.Spec.Type}
		// A server of another type than the Gateway's says what its events are.
		if srv, ok := supervisor.ServerFrom(ctx); ok && srv.Type != "" {
			ceGateway.Type = srv.Type
		}
		ce, err := cloudevent.From(ceGateway, ev, time.Now())
		if err != nil {
			log.Error("event dropped: not a valid CloudEvent", "eventSource", source, "error", err)
			ack(gateways.Ack_OUTCOME_DROPPED)
			return nil
		}
		// Acknowledged once every sensor took it, or its policy gave it up: until then the
		// server holds it.
		key := dispatch.Key{Source: source, Ordering: ev.GetOrderingKey()}
		return d.DispatchThen(ctx, key, ce, func(o dispatch.Outcome) {
			if o == dispatch.Dropped {
				ack(gateways.Ack_OUTCOME_DROPPED)
				return
			}
			ack(gateways.Ack_OUTCOME_DELIVERED)
		})
	}
	opts := supervisor.Options{Backoff: cfg.restartBackoff, Log: log, AckHandler: handle, AckWindow: uint32(cfg.ackWindow), AckLinger: cfg.ackLinger}
	if cfg.ackLinger == 0 {
		opts.AckLinger = supervisor.NoAckLinger
	}
	if cfg.ackWindow == 0 {
		// Unacknowledged, as before StreamEventSource.
		opts.AckHandler = nil
		opts.AckWindow = 0
	}
	if changed != nil {
		opts.OnStatus = func(supervisor.Status) { changed() }
	}
	plain := func(ctx context.Context, source string, ev *gateways.Event) error {
		return handle(ctx, source, ev, func(gateways.Ack_Outcome) {})
	}
	sup := supervisor.NewServers(servers, plain, opts)
	reg.MustRegister(statusCollector{sup})

	// The address is taken before any source starts: a client whose /healthz cannot be
	// served would be restarted by its liveness probe again and again, and one without
	// /metrics and /status runs unseen.
	var obsLis net.Listener
	if cfg.observe != "" {
		if obsLis, err = net.Listen("tcp", cfg.observe); err != nil {
			d.Close(0)
			closeConns()
			return nil, fmt.Errorf("--metrics-address: %w", err)
		}
	}
	obsCtx, stopObs := context.WithCancel(ctx)
	obsDone := make(chan struct{})
	go func() {
		defer close(obsDone)
		if obsLis != nil {
			serveObservability(obsCtx, obsLis, reg, sup, d, log)
		}
	}()
	c := &client{sup: sup, servers: names, sensors: len(tgts)}
	c.close = func() {
		sup.Stop()
		d.Close(10 * time.Second)
		closeConns()
		stopObs()
		<-obsDone
	}
	return c, nil
}

// apply runs the event sources of a ConfigMap's data, and logs what changed.
func (c *client) apply(data map[string]string, log *slog.Logger) {
	started, stopped := c.sup.Apply(supervisor.SourcesFrom(data, v1alpha1.GatewayVersion))
	if len(started)+len(stopped) > 0 {
		log.Info("event sources changed", "started", started, "stopped", stopped)
	}
}

// statusCollector exports the sources' states at scrape time, from the supervisor itself,
// so the metrics never disagree with /status.
type statusCollector struct{ sup *supervisor.Supervisor }

var (
	sourcesDesc = prometheus.NewDesc("eventgate_client_event_sources",
		"Configured event sources, by phase (Running, Error, Completed).", []string{"phase"}, nil)
	invalidDesc = prometheus.NewDesc("eventgate_client_event_source_invalid",
		"1 for each event source that every gateway server refused; it is retried when its config changes.", []string{"event_source"}, nil)
)

func (c statusCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- sourcesDesc
	ch <- invalidDesc
}

func (c statusCollector) Collect(ch chan<- prometheus.Metric) {
	phases := map[supervisor.Phase]int{supervisor.PhaseRunning: 0, supervisor.PhaseError: 0, supervisor.PhaseCompleted: 0}
	for _, st := range c.sup.Statuses() {
		phases[st.Phase]++
		if st.Invalid {
			ch <- prometheus.MustNewConstMetric(invalidDesc, prometheus.GaugeValue, 1, st.Name)
		}
	}
	for phase, n := range phases {
		ch <- prometheus.MustNewConstMetric(sourcesDesc, prometheus.GaugeValue, float64(n), string(phase))
	}
}
