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

// Target is one sensor, how to reach it, and what to do with what it does not take.
type Target struct {
	Name   string
	Sender Sender
	Policy Policy
}

// Options tune a Dispatcher; the zero value is replaced by the defaults.
type Options struct {
	// QueueSize bounds each sensor's queue (default DefaultQueueSize).
	QueueSize int
	// Concurrency is how many deliveries to one sensor may be in flight at once (default 1),
	// each of a different Key: events of one key always reach a sensor one after another,
	// in order, whatever the concurrency, and only events of different keys overlap. One
	// delivery at a time caps a key at one event (or batch) per round trip.
	Concurrency int
	// BatchSize is the most events one delivery may carry (default 1). Above 1, a worker
	// that finds events waiting sends them together in one request (CloudEvents batch mode)
	// to senders that can (BatchSender): a key's waiting events in order, then other
	// waiting keys' while there is room; an idle queue still sends each event alone and at
	// once. It lifts a key's ceiling of one event per round trip, for sensors that accept
	// batches (v0.10's did not: keep 1 for them).
	BatchSize int
	// AttemptTimeout bounds one delivery attempt, so a stalled sensor is retried rather
	// than waited on forever (default 10 s).
	AttemptTimeout time.Duration
	Backoff        Backoff
	Metrics        *Metrics
	Log            *slog.Logger
}

// DefaultQueueSize is one acknowledgement window (the gateway-client's default
// --ack-window): a source's window never waits on the queue, and what waits beyond it holds
// the streams back instead of queueing. Events a full queue holds wait in the gateway
// servers, or upstream, not in the client. On the webhook bench at full load, with
// unacknowledged streams (v0.10 servers, --ack-window 0), the old default of 1,000 gave an
// end-to-end p50 of 100 ms; 256 gives 51 ms, 1.02x the events/s and 2.5 MiB less RSS.
const DefaultQueueSize = 256

// Dispatcher fans events out to every target, each through its own ordered queue.
type Dispatcher struct {
	queues []*queue
	opts   Options
	// stop ends the workers' retries; it is cancelled after a drain, or at once by Close.
	stop    context.Context
	cancel  context.CancelFunc
	workers sync.WaitGroup
}

// Key says which events keep their order: those of one source with the same ordering key
// (gateways.Event.ordering_key). An empty Ordering is the source's own order, which every
// keyless event of the source shares.
type Key struct {
	Source   string
	Ordering string
}

type item struct {
	ev       cloudevents.Event
	source   string
	enqueued time.Time
	// fate, when set, is shared by the event's copies in every queue.
	fate *fate
}

// fate calls done once every target settled the event, Dropped if any dropped it.
type fate struct {
	left    atomic.Int32
	dropped atomic.Bool
	done    func(Outcome)
}

func (f *fate) settled(o Outcome) {
	if f == nil {
		return
	}
	if o == Dropped {
		f.dropped.Store(true)
	}
	if f.left.Add(-1) == 0 {
		if f.dropped.Load() {
			o = Dropped
		}
		f.done(o)
	}
}

type queue struct {
	target Target
	// policy is target.Policy with its defaults filled.
	policy Policy
	// slots holds a token for every event waiting (not yet taken by a worker): Dispatch
	// blocks on it while QueueSize events wait.
	slots chan struct{}
	// ready lists the keys that have events waiting and no delivery in flight, in the order
	// they became so; a worker takes a key from it and owns the key until its delivery
	// ends, which is what keeps a key's events in order. A key in ready has an event
	// waiting, so QueueSize bounds its length too.
	ready chan *keyQueue
	mu    sync.Mutex
	keys  map[Key]*keyQueue // keys with events waiting or in flight
	// pending counts the events given to this queue and not delivered yet: queued, or in one
	// of the workers' deliveries. One counter for all, raised before an event is queued
	// and lowered after its delivery, so that it is exact whatever the workers do at once.
	pending atomic.Int64
	// full is set while Dispatch finds the queue full, so that a stream held back at every
	// event logs once, not once per event (that log was a tenth of the client's CPU).
	full atomic.Bool
	// unreachable is the error of the sensor's last failed attempt (delivery or connection),
	// nil since its last success.
	unreachable atomic.Pointer[string]
	// What the policy did, for Sensors.
	retries, deadLettered, dropped atomic.Int64
}

// keyQueue is one key's waiting events in one queue. A key is in its queue's keys only
// while it is in ready or a worker delivers it: events added meanwhile wait for that
// worker to hand the key back.
type keyQueue struct {
	key   Key
	items []item
}

// push adds it to its key's events, and makes a new key ready.
func (q *queue) push(key Key, it item) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if k := q.keys[key]; k != nil {
		k.items = append(k.items, it)
		return
	}
	k := &keyQueue{key: key, items: []item{it}}
	q.keys[key] = k
	q.ready <- k // never blocks: see ready
}

// take moves up to n waiting events of k (and, with more, of other ready keys) into
// batch; owned gets each key taken, to hand back with release.
func (q *queue) take(k *keyQueue, n int, more bool, batch []item, owned []*keyQueue) ([]item, []*keyQueue) {
	q.mu.Lock()
	for {
		m := min(n-len(batch), len(k.items))
		batch = append(batch, k.items[:m]...)
		clear(k.items[:m])
		k.items = k.items[m:]
		owned = append(owned, k)
		if !more || len(batch) >= n {
			break
		}
		select {
		case k = <-q.ready:
			continue
		default:
		}
		break
	}
	q.mu.Unlock()
	for range batch {
		<-q.slots
	}
	return batch, owned
}

// release hands keys back after their delivery: one with events waiting is ready again,
// behind the keys that became ready meanwhile; one without is forgotten.
func (q *queue) release(keys []*keyQueue) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, k := range keys {
		if len(k.items) > 0 {
			q.ready <- k
			continue
		}
		delete(q.keys, k.key)
	}
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
	// Retries counts the deliveries retried after a failed attempt; DeadLettered and
	// Dropped the events the sensor's policy gave up, to its dead-letter sink or to nothing.
	Retries        int64  `json:"retries"`
	DeadLettered   int64  `json:"deadLettered"`
	Dropped        int64  `json:"dropped"`
	DeadLetterSink string `json:"deadLetterSink,omitempty"`
}

// Sensors reports each target's state, in the order of the targets.
func (d *Dispatcher) Sensors() []SensorStatus {
	out := make([]SensorStatus, 0, len(d.queues))
	for _, q := range d.queues {
		st := SensorStatus{Name: q.target.Name, Target: q.target.Sender.String(), Reachable: true, Pending: int(q.pending.Load()),
			Retries: q.retries.Load(), DeadLettered: q.deadLettered.Load(), Dropped: q.dropped.Load()}
		if dl := q.policy.DeadLetter; dl != nil {
			st.DeadLetterSink = dl.String()
		}
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
		opts.QueueSize = DefaultQueueSize
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
		q := &queue{target: t, policy: t.Policy, slots: make(chan struct{}, opts.QueueSize), ready: make(chan *keyQueue, opts.QueueSize), keys: map[Key]*keyQueue{}}
		if q.policy.Backoff == (Backoff{}) {
			q.policy.Backoff = opts.Backoff
		}
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

// Dispatch queues ev, from the event source named source, for every target, in the order
// of the source's events without an ordering key. It blocks while a queue is full, which
// slows the event stream down to the slowest sensor's pace instead of dropping events, and
// returns ctx's error if ctx ends first: the event is then queued for the targets before
// the full one only.
func (d *Dispatcher) Dispatch(ctx context.Context, source string, ev cloudevents.Event) error {
	return d.DispatchThen(ctx, Key{Source: source}, ev, nil)
}

// DispatchThen is Dispatch in key's order, and calls settled (when not nil) once, from a
// worker, when every target settled the event: Delivered when each took it, Dropped when
// some target's policy gave it up (dead-lettered or dropped). It is never called for an
// event that some target did not settle: one Dispatch gave up on, or one still unsettled
// at Close; the caller decides what those become (an acknowledgement upstream waits for
// settled).
func (d *Dispatcher) DispatchThen(ctx context.Context, key Key, ev cloudevents.Event, settled func(Outcome)) error {
	source := key.Source
	it := item{ev: ev, source: source, enqueued: time.Now()}
	if settled != nil && len(d.queues) == 0 {
		settled(Delivered)
	} else if settled != nil {
		it.fate = &fate{done: settled}
		it.fate.left.Store(int32(len(d.queues)))
	}
	for _, q := range d.queues {
		q.pending.Add(1)
		select {
		case q.slots <- struct{}{}:
			if q.full.Load() && len(q.slots) < cap(q.slots)/2 {
				q.full.Store(false)
				d.opts.Log.Info("sensor queue has room again", "sensor", q.target.Name)
			}
		default:
			if q.full.CompareAndSwap(false, true) {
				d.opts.Log.Warn("sensor queue full: holding the event stream back", "sensor", q.target.Name, "eventSource", source)
			}
			select {
			case q.slots <- struct{}{}:
			case <-ctx.Done():
				q.pending.Add(-1)
				return ctx.Err()
			case <-d.stop.Done():
				q.pending.Add(-1)
				return ErrClosed
			}
		}
		d.opts.Metrics.queueDepth.WithLabelValues(q.target.Name).Inc()
		q.push(key, it)
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
		if dl := q.policy.DeadLetter; dl != nil {
			if err := dl.Close(); err != nil {
				d.opts.Log.Warn("close dead-letter sender", "sensor", q.target.Name, "error", err)
			}
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
		n += len(q.slots)
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

// work delivers q's events, one ready key (or, batching, several) at a time, each until
// its sensor takes it or q's policy gives it up: the key waits meanwhile, so that its
// events stay in order.
func (d *Dispatcher) work(q *queue) {
	defer d.workers.Done()
	batcher, canBatch := q.target.Sender.(BatchSender)
	batch := make([]item, 0, d.opts.BatchSize)
	var owned []*keyQueue
	if c, ok := q.target.Sender.(connector); ok {
		select {
		case <-c.ready():
		case <-d.stop.Done():
			return
		}
	}
	for {
		var k *keyQueue
		select {
		case k = <-q.ready:
		case <-d.stop.Done():
			return
		}
		n := 1
		if canBatch {
			n = d.opts.BatchSize
		}
		batch, owned = q.take(k, n, canBatch, batch[:0], owned[:0])
		if !d.deliver(q, batcher, batch, 0, false) {
			return
		}
		q.release(owned)
	}
}

// deliver makes attempts to deliver batch until the sensor takes it or q's policy gives it
// up, and settles each of its events. prior counts the attempts the events already had
// together, in a batch; lastChance gives them one more only. It returns false if the
// dispatcher stopped first, leaving the events not settled yet unsettled.
func (d *Dispatcher) deliver(q *queue, b BatchSender, batch []item, prior int, lastChance bool) bool {
	m := d.opts.Metrics
	first := time.Now()
	if prior == 0 {
		for _, it := range batch {
			m.queueDelay.WithLabelValues(q.target.Name).Observe(first.Sub(it.enqueued).Seconds())
		}
	}
	for attempt := prior + 1; ; attempt++ {
		err := d.attempt(q.target.Sender, b, batch)
		retryable := err != nil && Retryable(err)
		if retryable {
			d.setReachable(q, err)
		} else {
			d.setReachable(q, nil) // it answered, even if to refuse
		}
		if err == nil {
			for _, it := range batch {
				m.dispatched.WithLabelValues(it.source, q.target.Name).Inc()
				m.latency.WithLabelValues(q.target.Name).Observe(time.Since(it.enqueued).Seconds())
			}
			d.settle(q, batch, Delivered)
			return true
		}
		for _, it := range batch {
			m.failed.WithLabelValues(it.source, q.target.Name).Inc()
		}
		wait := q.policy.Backoff.Delay(attempt - 1)
		reason := ""
		if !retryable {
			reason = reasonRejected
		} else if lastChance || q.policy.exhausted(attempt, time.Since(first), wait) {
			reason = reasonExhausted
		}
		var answer *AnswerError
		if reason != "" && len(batch) > 1 && errors.As(err, &answer) {
			// The policy would give up the batch, which the sensor answered: maybe for the
			// fault of some of its events. Each alone, in order, finds out which, so that only
			// those are given up: refused, each under the whole policy; out of retries, with
			// one attempt more. A sensor that did not answer at all is down, for every event
			// alike, and the batch is given up as a whole.
			for i := range batch {
				var ok bool
				if reason == reasonRejected {
					ok = d.deliver(q, nil, batch[i:i+1], 0, false)
				} else {
					ok = d.deliver(q, nil, batch[i:i+1], attempt, true)
				}
				if !ok {
					return false
				}
			}
			return true
		}
		if reason != "" {
			return d.giveUp(q, batch, err, attempt, reason)
		}
		q.retries.Add(1)
		m.retries.WithLabelValues(q.target.Name).Inc()
		d.opts.Log.Warn("delivery failed: will retry", "sensor", q.target.Name, "eventSource", batch[0].source,
			"eventID", batch[0].ev.ID(), "events", len(batch), "attempt", attempt, "retryIn", wait, "error", err)
		if sleep(d.stop, wait) != nil {
			return false
		}
	}
}

// settle ends batch's events for q's sensor.
func (d *Dispatcher) settle(q *queue, batch []item, o Outcome) {
	d.opts.Metrics.queueDepth.WithLabelValues(q.target.Name).Sub(float64(len(batch)))
	q.pending.Add(-int64(len(batch)))
	for _, it := range batch {
		it.fate.settled(o)
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
