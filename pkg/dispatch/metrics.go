package dispatch

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the dispatcher's Prometheus series.
type Metrics struct {
	dispatched *prometheus.CounterVec
	failed     *prometheus.CounterVec
	queueDepth *prometheus.GaugeVec
	latency    *prometheus.HistogramVec
	queueDelay *prometheus.HistogramVec
	reachable  *prometheus.GaugeVec

	retries            *prometheus.CounterVec
	deadLettered       *prometheus.CounterVec
	dropped            *prometheus.CounterVec
	deadLetterFailures *prometheus.CounterVec
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
			Help: "Failed delivery attempts (retried, dead-lettered or dropped as the sensor's policy says), by event source and sensor.",
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
		queueDelay: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "eventgate_client_queue_delay_seconds",
			Help:    "Time an event waited in the client, behind other events of its key or for a free delivery slot, before its first attempt at the sensor, by sensor.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10),
		}, []string{"sensor"}),
		reachable: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "eventgate_client_sensor_reachable",
			Help: "1 while the sensor takes deliveries, 0 from a failed delivery or connection attempt (a NATS server not up yet) to the next success, by sensor.",
		}, []string{"sensor"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventgate_client_delivery_retries_total",
			Help: "Deliveries retried after a failed attempt, by sensor.",
		}, []string{"sensor"}),
		deadLettered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventgate_client_events_dead_lettered_total",
			Help: "Events a sensor did not take that its dead-letter sink took, by sensor and reason (rejected: an answer not worth retrying; retries_exhausted).",
		}, []string{"sensor", "reason"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventgate_client_events_dropped_total",
			Help: "Events a sensor did not take, dropped for want of a dead-letter sink, by sensor and reason (rejected: an answer not worth retrying; retries_exhausted).",
		}, []string{"sensor", "reason"}),
		deadLetterFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventgate_client_dead_letter_failures_total",
			Help: "Failed attempts to hand an event to a sensor's dead-letter sink (each is retried), by sensor.",
		}, []string{"sensor"}),
	}
	if reg != nil {
		reg.MustRegister(m.dispatched, m.failed, m.queueDepth, m.latency, m.queueDelay, m.reachable, m.retries, m.deadLettered, m.dropped, m.deadLetterFailures)
	}
	return m
}
