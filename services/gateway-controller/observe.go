package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the controller's Prometheus metrics.
type metrics struct {
	reg        *prometheus.Registry
	reconciles *prometheus.CounterVec
	duration   prometheus.Histogram
	leader     prometheus.Gauge
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		reconciles: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventgate_controller_reconciles_total",
			Help: "Gateway reconciles, by result (success, error: retried with backoff).",
		}, []string{"result"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "eventgate_controller_reconcile_duration_seconds",
			Help:    "Time to reconcile one Gateway.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 8),
		}),
		leader: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "eventgate_controller_leader",
			Help: "1 while this replica holds the leader Lease and reconciles, else 0.",
		}),
	}
	m.reg.MustRegister(m.reconciles, m.duration, m.leader,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) observe(err error, d time.Duration) {
	result := "success"
	if err != nil {
		result = "error"
	}
	m.reconciles.WithLabelValues(result).Inc()
	m.duration.Observe(d.Seconds())
}

// serveObservability serves /metrics, /healthz and /readyz on lis until ctx ends. A replica
// waiting for the Lease is healthy and ready: it is a warm standby.
func serveObservability(ctx context.Context, lis net.Listener, m *metrics, log *slog.Logger) {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg}))
	ok := func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok\n")) }
	mux.HandleFunc("/healthz", ok)
	mux.HandleFunc("/readyz", ok)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(shutdown)
	}()
	log.Info("metrics and health", "address", lis.Addr().String())
	if err := srv.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Error("metrics server", "error", err)
	}
}
