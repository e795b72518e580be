package dispatch

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the dispatcher's Prometheus series.
type Metrics struct {
	dispatched *prometheus.CounterVec
	failed     *prometheus.CounterVec
	queueDepth *prometheus.GaugeVec
	latency    *prometheus.HistogramVec
	reachable  *prometheus.GaugeVec
}

// NewMetrics creates the series and registers them with reg (none when reg is nil).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		dispatched: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventgate_client_events_dispatched_total",
			Help: "Events a sensor accepted, by event source and sensor.",
		}, []string{"event_source", "sensor"}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventgate_client_dispatch_failures_total",
			Help: "Failed delivery attempts (each is retried), by event source and sensor.",
		}, []string{"event_source", "sensor"}),
		queueDepth: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "eventgate_client_queue_depth",
			Help: "Events waiting for delivery, by sensor.",
		}, []string{"sensor"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "eventgate_client_dispatch_latency_seconds",
			Help:    "Time from queueing an event to the sensor accepting it, retries included.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 10),
		}, []string{"sensor"}),
		reachable: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "eventgate_client_sensor_reachable",
			Help: "1 while the sensor takes deliveries, 0 from a failed delivery or connection attempt (a NATS server not up yet) to the next success, by sensor.",
		}, []string{"sensor"}),
	}
	if reg != nil {
		reg.MustRegister(m.dispatched, m.failed, m.queueDepth, m.latency, m.reachable)
	}
	return m
}
