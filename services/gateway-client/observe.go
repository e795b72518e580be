package main

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/eventgate/eventgate/pkg/dispatch"
	"github.com/eventgate/eventgate/services/gateway-client/supervisor"
)

// serveObservability serves /metrics, /healthz, /status (the sources' states as JSON, what
// the Gateway status nodes hold in Kubernetes) and /status/sensors (each sensor's
// reachability and pending events; apart, so that /status keeps its v0.10-era shape) on lis
// until ctx ends.
func serveObservability(ctx context.Context, lis net.Listener, reg *prometheus.Registry, sup *supervisor.Supervisor, d *dispatch.Dispatcher, log *slog.Logger) {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok\n")) })
	mux.HandleFunc("/status", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(sup.Statuses())
	})
	mux.HandleFunc("/status/sensors", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(d.Sensors())
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(shutdown)
	}()
	log.Info("metrics, health and status", "address", lis.Addr().String())
	if err := srv.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Error("observability server", "error", err)
	}
}
