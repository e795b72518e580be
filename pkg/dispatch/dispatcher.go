package dispatch

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
)

// Target is one sensor and how to reach it.
type Target struct {
	Name   string
	Sender Sender
}

// Options tune a Dispatcher; the zero value is replaced by the defaults.
type Options struct {
	// QueueSize bounds each sensor's queue (default 1000 events).
	QueueSize int
	// Concurrency is how many deliveries to one sensor may be in flight at once (default 1).
	// With 1, a sensor receives events in order; more trades that order for throughput,
	// since one delivery at a time caps a sensor at one event per round trip.
	Concurrency int
	// BatchSize is the most events one delivery may carry (default 1). Above 1, a worker
	// that finds events waiting sends them together, in order, in one request (CloudEvents
	// batch mode) to senders that can (BatchSender); an idle queue still sends each event
	// alone and at once. It lifts the ordered path's ceiling of one event per round trip,
	// for sensors that accept batches (v0.10's did not: keep 1 for them).
	BatchSize int
	// AttemptTimeout bounds one delivery attempt, so a stalled sensor is retried rather
	// than waited on forever (default 10 s).
	AttemptTimeout time.Duration
	Backoff        Backoff
	Metrics        *Metrics
	Log            *slog.Logger
}

// Dispatcher fans events out to every target, each through its own ordered queue.
type Dispatcher struct {
	queues []*queue
	opts   Options
	// stop ends the workers' retries; it is cancelled after a drain, or at once by Close.
	stop    context.Context
	cancel  context.CancelFunc
	workers sync.WaitGroup
}

type item struct {
	ev       cloudevents.Event
	source   string
	enqueued time.Time
	// fate, when set, is shared by the event's copies in every queue.
	fate *fate
}

// fate calls done once every target took the event.
type fate struct {
	left atomic.Int32
	done func()
}

func (f *fate) delivered() {
	if f != nil && f.left.Add(-1) == 0 {
		f.done()
	}
}

type queue struct {
	target Target
	items  chan item
	// pending counts the events given to this queue and not delivered yet: queued, or in one
	// of the workers' deliveries. One counter for all, raised before an event enters items
	// and lowered after its delivery, so that it is exact whatever the workers do at once.
	pending atomic.Int64
	// full is set while Dispatch finds the queue full, so that a stream held back at every
	// event logs once, not once per event (that log was a tenth of the client's CPU).
	full atomic.Bool
	// unreachable is the error of the sensor's last failed attempt (delivery or connection),
	// nil since its last success.
	unreachable atomic.Pointer[string]
}

// SensorStatus is what the dispatcher knows of one sensor.
type SensorStatus struct {
	Name   string `json:"name"`
	Target string `json:"target"`
	// Reachable is false from a failed delivery or connection attempt to the next success.
	Reachable bool   `json:"reachable"`
	Error     string `json:"error,omitempty"`
	// Pending counts the events queued for the sensor or in deliveries not finished yet.
	Pending int `json:"pending"`
}

// Sensors reports each target's state, in the order of the targets.
func (d *Dispatcher) Sensors() []SensorStatus {
	out := make([]SensorStatus, 0, len(d.queues))
	for _, q := range d.queues {
		st := SensorStatus{Name: q.target.Name, Target: q.target.Sender.String(), Reachable: true, Pending: int(q.pending.Load())}
		if e := q.unreachable.Load(); e != nil {
			st.Reachable, st.Error = false, *e
		}
		out = append(out, st)
	}
	return out
}

// setReachable records the outcome of an attempt to reach q's sensor (err nil: reached),
// logging and counting only the changes.
func (d *Dispatcher) setReachable(q *queue, err error) {
	if err == nil {
		if q.unreachable.Swap(nil) != nil {
			d.opts.Metrics.reachable.WithLabelValues(q.target.Name).Set(1)
			d.opts.Log.Info("sensor reachable again", "sensor", q.target.Name)
		}
		return
	}
	msg := err.Error()
	if q.unreachable.Swap(&msg) == nil {
		d.opts.Metrics.reachable.WithLabelValues(q.target.Name).Set(0)
	}
}

// New starts Concurrency workers per target. Close stops them.
func New(targets []Target, opts Options) *Dispatcher {
	if opts.QueueSize <= 0 {
		opts.QueueSize = 1000
	}
	opts.Concurrency = max(opts.Concurrency, 1)
	opts.BatchSize = max(opts.BatchSize, 1)
	if opts.AttemptTimeout <= 0 {
		opts.AttemptTimeout = 10 * time.Second
	}
	if opts.Backoff == (Backoff{}) {
		opts.Backoff = DefaultBackoff
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if opts.Metrics == nil {
		opts.Metrics = NewMetrics(nil)
	}
	d := &Dispatcher{opts: opts}
	d.stop, d.cancel = context.WithCancel(context.Background())
	for _, t := range targets {
		q := &queue{target: t, items: make(chan item, opts.QueueSize)}
		d.queues = append(d.queues, q)
		opts.Metrics.reachable.WithLabelValues(t.Name).Set(1)
		if c, ok := t.Sender.(connector); ok {
			// Unreachable until connected: the workers wait for it.
			d.setReachable(q, errors.New("not connected yet"))
			d.workers.Add(1)
			go d.connect(q, c)
		}
		for range opts.Concurrency {
			d.workers.Add(1)
			go d.work(q)
		}
	}
	return d
}

// ErrClosed is returned by Dispatch after Close.
var ErrClosed = errors.New("dispatcher is closed")

// Dispatch queues ev, from the event source named source, for every target. It blocks while
// a queue is full, which slows the event stream down to the slowest sensor's pace instead
// of dropping events, and returns ctx's error if ctx ends first: the event is then queued
// for the targets before the full one only.
func (d *Dispatcher) Dispatch(ctx context.Context, source string, ev cloudevents.Event) error {
	return d.DispatchThen(ctx, source, ev, nil)
}

// DispatchThen is Dispatch, and calls delivered (when not nil) once, from a worker, when every
// target took the event. It is never called for an event that some target did not take: one
// Dispatch gave up on, or one still undelivered at Close; the caller decides what those
// become (an acknowledgement upstream waits for delivered).
func (d *Dispatcher) DispatchThen(ctx context.Context, source string, ev cloudevents.Event, delivered func()) error {
	it := item{ev: ev, source: source, enqueued: time.Now()}
	if delivered != nil && len(d.queues) == 0 {
		delivered()
	} else if delivered != nil {
		it.fate = &fate{done: delivered}
		it.fate.left.Store(int32(len(d.queues)))
	}
	for _, q := range d.queues {
		q.pending.Add(1)
		select {
		case q.items <- it:
			d.opts.Metrics.queueDepth.WithLabelValues(q.target.Name).Inc()
			if q.full.Load() && len(q.items) < cap(q.items)/2 {
				q.full.Store(false)
				d.opts.Log.Info("sensor queue has room again", "sensor", q.target.Name)
			}
		default:
			if q.full.CompareAndSwap(false, true) {
				d.opts.Log.Warn("sensor queue full: holding the event stream back", "sensor", q.target.Name, "eventSource", source)
			}
			select {
			case q.items <- it:
				d.opts.Metrics.queueDepth.WithLabelValues(q.target.Name).Inc()
			case <-ctx.Done():
				q.pending.Add(-1)
				return ctx.Err()
			case <-d.stop.Done():
				q.pending.Add(-1)
				return ErrClosed
			}
		}
	}
	return nil
}

// Close waits up to drain for the queued events to be delivered, then stops the workers
// and closes the senders. It returns how many events were still queued.
func (d *Dispatcher) Close(drain time.Duration) int {
	deadline := time.Now().Add(drain)
	for time.Now().Before(deadline) && d.pending() > 0 {
		time.Sleep(10 * time.Millisecond)
	}
	left := d.pending()
	d.cancel()
	d.workers.Wait()
	for _, q := range d.queues {
		if err := q.target.Sender.Close(); err != nil {
			d.opts.Log.Warn("close sender", "sensor", q.target.Name, "error", err)
		}
	}
	if left > 0 {
		d.opts.Log.Error("stopped with undelivered events", "events", left)
	}
	return left
}

func (d *Dispatcher) queued() int {
	n := 0
	for _, q := range d.queues {
		n += len(q.items)
	}
	return n
}

// pending is queued plus the events in deliveries not finished yet.
func (d *Dispatcher) pending() int {
	n := 0
	for _, q := range d.queues {
		n += int(q.pending.Load())
	}
	return n
}

// connect connects q's sender, retrying until it succeeds or the dispatcher stops; the waits
// are capped at connectBackoffMax, so that a sensor transport that comes up is used soon.
func (d *Dispatcher) connect(q *queue, c connector) {
	defer d.workers.Done()
	b := d.opts.Backoff
	b.Max = min(b.Max, connectBackoffMax)
	for attempt := 0; ; attempt++ {
		err := c.connect()
		if err == nil {
			d.setReachable(q, nil)
			return
		}
		d.setReachable(q, err)
		wait := b.Delay(attempt)
		d.opts.Log.Warn("sensor not reachable: holding its deliveries back", "sensor", q.target.Name, "attempt", attempt+1, "retryIn", wait, "error", err)
		if sleep(d.stop, wait) != nil {
			return
		}
	}
}

const connectBackoffMax = 5 * time.Second

// work delivers q's events in order, each until the sensor takes it (in order overall
// only when it is q's one worker).
func (d *Dispatcher) work(q *queue) {
	defer d.workers.Done()
	m := d.opts.Metrics
	batcher, canBatch := q.target.Sender.(BatchSender)
	batch := make([]item, 0, d.opts.BatchSize)
	if c, ok := q.target.Sender.(connector); ok {
		select {
		case <-c.ready():
		case <-d.stop.Done():
			return
		}
	}
	for {
		batch = batch[:0]
		select {
		case it := <-q.items:
			batch = append(batch, it)
		case <-d.stop.Done():
			return
		}
		for canBatch && len(batch) < d.opts.BatchSize && len(q.items) > 0 {
			batch = append(batch, <-q.items)
		}
		for attempt := 0; ; attempt++ {
			err := d.attempt(q.target.Sender, batcher, batch)
			d.setReachable(q, err)
			if err == nil {
				for _, it := range batch {
					m.queueDepth.WithLabelValues(q.target.Name).Dec()
					m.dispatched.WithLabelValues(it.source, q.target.Name).Inc()
					m.latency.WithLabelValues(q.target.Name).Observe(time.Since(it.enqueued).Seconds())
				}
				q.pending.Add(-int64(len(batch)))
				for _, it := range batch {
					it.fate.delivered()
				}
				break
			}
			for _, it := range batch {
				m.failed.WithLabelValues(it.source, q.target.Name).Inc()
			}
			wait := d.opts.Backoff.Delay(attempt)
			d.opts.Log.Warn("delivery failed: will retry", "sensor", q.target.Name, "eventSource", batch[0].source,
				"eventID", batch[0].ev.ID(), "events", len(batch), "attempt", attempt+1, "retryIn", wait, "error", err)
			if sleep(d.stop, wait) != nil {
				return
			}
		}
	}
}

// attempt makes one delivery of batch: one event alone, or several in one request.
func (d *Dispatcher) attempt(s Sender, b BatchSender, batch []item) error {
	ctx, cancel := context.WithTimeout(d.stop, d.opts.AttemptTimeout)
	defer cancel()
	if len(batch) == 1 {
		return s.Send(ctx, batch[0].ev)
	}
	evs := make([]cloudevents.Event, len(batch))
	for i, it := range batch {
		evs[i] = it.ev
	}
	return b.SendBatch(ctx, evs)
}
