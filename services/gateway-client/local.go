package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"

	"github.com/eventgate/eventgate/pkg/cloudevent"
	"github.com/eventgate/eventgate/pkg/dispatch"
	"github.com/eventgate/eventgate/protos/gateways"
	"github.com/eventgate/eventgate/services/gateway-client/supervisor"
)

type localConfig struct {
	gatewayFile      string
	eventSourcesFile string
	server           string
	namespace        string
	sensors          sensorURLs
	observe          string
	queueSize        int
}

func parseFlags(args []string) (localConfig, error) {
	cfg := localConfig{sensors: sensorURLs{}}
	fs := flag.NewFlagSet("gateway-client", flag.ContinueOnError)
	fs.StringVar(&cfg.gatewayFile, "gateway", "", "Gateway manifest (YAML, as applied to Kubernetes) (required)")
	fs.StringVar(&cfg.eventSourcesFile, "event-sources", "", "event-source ConfigMap manifest, watched for changes (required)")
	fs.StringVar(&cfg.server, "server", "", "gateway server address (default 127.0.0.1:<spec.processorPort>)")
	fs.StringVar(&cfg.namespace, "namespace", "default", "namespace for sensor service addresses of watchers without one")
	fs.Var(cfg.sensors, "sensor", "[NAME=]URL: where the watcher NAME (or an extra sensor) receives events; repeatable")
	fs.StringVar(&cfg.observe, "metrics-address", "127.0.0.1:9301", "address of /metrics, /healthz and /status (empty: off)")
	fs.IntVar(&cfg.queueSize, "queue-size", 1000, "events queued per sensor before the event streams are held back")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	var missing []error
	if cfg.gatewayFile == "" {
		missing = append(missing, errors.New("--gateway is required"))
	}
	if cfg.eventSourcesFile == "" {
		missing = append(missing, errors.New("--event-sources is required"))
	}
	if cfg.queueSize <= 0 {
		missing = append(missing, fmt.Errorf("--queue-size must be positive, got %d", cfg.queueSize))
	}
	return cfg, errors.Join(missing...)
}

// runLocal runs the client without Kubernetes: the Gateway and its event sources come from
// files, and the event sources file is watched for changes.
func runLocal(ctx context.Context, cfg localConfig, log *slog.Logger) error {
	gw, err := readGateway(cfg.gatewayFile)
	if err != nil {
		return err
	}
	log = log.With("gateway", gw.Name)
	addr := cfg.server
	if addr == "" {
		addr = "127.0.0.1:" + gw.Spec.ProcessorPort
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	received := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "eventgate_client_events_received_total",
		Help: "Events received from the gateway server, by event source.",
	}, []string{"event_source"})
	reg.MustRegister(received)

	tgts, err := targets(gw, cfg.namespace, cfg.sensors)
	if err != nil {
		return err
	}
	d := dispatch.New(tgts, dispatch.Options{QueueSize: cfg.queueSize, Metrics: dispatch.NewMetrics(reg), Log: log})
	defer d.Close(10 * time.Second)

	conn, err := grpc.NewClient(addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}))
	if err != nil {
		return fmt.Errorf("gateway server %s: %w", addr, err)
	}
	defer conn.Close()

	ceGateway := cloudevent.Gateway{Name: gw.Name, Type: gw.Spec.Type}
	handle := func(ctx context.Context, source string, ev *gateways.Event) error {
		received.WithLabelValues(source).Inc()
		ce, err := cloudevent.From(ceGateway, ev, time.Now())
		if err != nil {
			log.Error("event dropped: not a valid CloudEvent", "eventSource", source, "error", err)
			return nil
		}
		return d.Dispatch(ctx, source, ce)
	}
	sup := supervisor.New(conn, handle, supervisor.Options{Log: log})
	defer sup.Stop()

	if cfg.observe != "" {
		go serveObservability(ctx, cfg.observe, reg, sup, log)
	}
	log.Info("gateway-client running", "server", addr, "sensors", len(tgts), "eventSources", cfg.eventSourcesFile)
	return watchFile(ctx, cfg.eventSourcesFile, log, func(data map[string]string) {
		started, stopped := sup.Apply(supervisor.SourcesFrom(data, "v0.10"))
		if len(started)+len(stopped) > 0 {
			log.Info("event sources changed", "started", started, "stopped", stopped)
		}
	})
}
