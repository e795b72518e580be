package dispatch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/eventgate/eventgate/pkg/testenv"
	"github.com/eventgate/eventgate/pkg/testenv/natsenv"
)

var fastBackoff = Backoff{Initial: 5 * time.Millisecond, Max: 50 * time.Millisecond, Factor: 2, Jitter: 0.2}

// sensor is a real HTTP server that records the CloudEvents it accepts (binary mode) and
// answers with whatever status its mode says.
type sensor struct {
	mu       sync.Mutex
	status   int           // answer for the next requests
	hold     chan struct{} // when non-nil, requests wait for it to close
	accepted []received
	requests int
	batches  int // accepted requests in batch mode
	// base64Batches counts batches that carried JSON data as base64.
	base64Batches int
}

type received struct {
	id, source, typ, subject, contentType, data string
}

func startSensor(t *testing.T) (*sensor, string) {
	s := &sensor{status: http.StatusOK}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.requests++
		status, hold := s.status, s.hold
		s.mu.Unlock()
		if hold != nil {
			<-hold
		}
		if status/100 == 2 && cehttp.IsHTTPBatch(r.Header) {
			var batch []cloudevents.Event
			if err := json.Unmarshal(body, &batch); err != nil {
				t.Errorf("sensor: undecodable batch: %v", err)
			}
			s.mu.Lock()
			s.batches++
			if strings.Contains(string(body), `"data_base64"`) {
				s.base64Batches++
			}
			for _, ev := range batch {
				s.accepted = append(s.accepted, received{id: ev.ID(), source: ev.Source(), typ: ev.Type(),
					subject: ev.Subject(), contentType: ev.DataContentType(), data: string(ev.Data())})
			}
			s.mu.Unlock()
		} else if status/100 == 2 {
			s.mu.Lock()
			s.accepted = append(s.accepted, received{
				id: r.Header.Get("Ce-Id"), source: r.Header.Get("Ce-Source"), typ: r.Header.Get("Ce-Type"),
				subject: r.Header.Get("Ce-Subject"), contentType: r.Header.Get("Content-Type"), data: string(body),
			})
			s.mu.Unlock()
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(srv.Close)
	return s, srv.URL
}

func (s *sensor) set(status int, hold chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status, s.hold = status, hold
}

func (s *sensor) got() []received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]received(nil), s.accepted...)
}

func event(i int) cloudevents.Event {
	ev := cloudevents.NewEvent()
	ev.SetID("evt-" + strconv.Itoa(i))
	ev.SetSource("calendar-gateway")
	ev.SetType("calendar")
	ev.SetSubject("every-second")
	if err := ev.SetData(cloudevents.ApplicationJSON, []byte(fmt.Sprintf(`{"n":%d}`, i))); err != nil {
		panic(err)
	}
	return ev
}

func newDispatcher(t *testing.T, opts Options, urls ...string) *Dispatcher {
	t.Helper()
	var targets []Target
	for i, u := range urls {
		s, err := NewHTTPSender(u)
		if err != nil {
			t.Fatal(err)
		}
		targets = append(targets, Target{Name: "sensor-" + strconv.Itoa(i), Sender: s})
	}
	if opts.Backoff == (Backoff{}) {
		opts.Backoff = fastBackoff
	}
	opts.Log = testenv.Logger(t)
	d := New(targets, opts)
	t.Cleanup(func() { d.Close(0) })
	return d
}

func waitFor(t *testing.T, s *sensor, n int) []received {
	t.Helper()
	testenv.Eventually(t, 10*time.Second, 5*time.Millisecond, func() error {
		if got := len(s.got()); got < n {
			return fmt.Errorf("sensor has %d events, want %d", got, n)
		}
		return nil
	})
	return s.got()
}

func TestDeliversBinaryModeToEverySensor(t *testing.T) {
	a, urlA := startSensor(t)
	b, urlB := startSensor(t)
	d := newDispatcher(t, Options{}, urlA, urlB)
	for i := range 3 {
		if err := d.Dispatch(t.Context(), "every-second", event(i)); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range []*sensor{a, b} {
		got := waitFor(t, s, 3)
		for i, r := range got {
			want := received{id: "evt-" + strconv.Itoa(i), source: "calendar-gateway", typ: "calendar", subject: "every-second",
				contentType: "application/json", data: fmt.Sprintf(`{"n":%d}`, i)}
			if r != want {
				t.Errorf("event %d = %+v, want %+v", i, r, want)
			}
		}
	}
}

func TestSensorOutageLosesNothingAndKeepsOrder(t *testing.T) {
	s, url := startSensor(t)
	reg := prometheus.NewRegistry()
	d := newDispatcher(t, Options{Metrics: NewMetrics(reg)}, url)

	s.set(http.StatusServiceUnavailable, nil) // down: every answer a 503
	const n = 50
	for i := range n {
		if err := d.Dispatch(t.Context(), "src", event(i)); err != nil {
			t.Fatal(err)
		}
	}
	testenv.Eventually(t, 10*time.Second, 5*time.Millisecond, func() error {
		if f := testutil.ToFloat64(d.opts.Metrics.failed.WithLabelValues("src", "sensor-0")); f < 3 {
			return fmt.Errorf("%v failed attempts so far", f)
		}
		return nil
	})
	if len(s.got()) != 0 {
		t.Fatalf("a sensor answering 503 was counted as delivered")
	}
	s.set(http.StatusAccepted, nil) // back up
	got := waitFor(t, s, n)
	if len(got) != n {
		t.Fatalf("sensor got %d events, want exactly %d", len(got), n)
	}
	for i, r := range got {
		if r.id != "evt-"+strconv.Itoa(i) {
			t.Fatalf("event %d is %s: order lost", i, r.id)
		}
	}
	// The sensor records an event before the dispatcher has read its answer: wait for
	// the metrics of the last one.
	testenv.Eventually(t, 10*time.Second, 5*time.Millisecond, func() error {
		if v := testutil.ToFloat64(d.opts.Metrics.dispatched.WithLabelValues("src", "sensor-0")); v != n {
			return fmt.Errorf("dispatched metric = %v, want %d", v, n)
		}
		if v := testutil.ToFloat64(d.opts.Metrics.queueDepth.WithLabelValues("sensor-0")); v != 0 {
			return fmt.Errorf("queue depth = %v after delivery, want 0", v)
		}
		return nil
	})
	// Each event's wait before its first attempt is observed once; the later ones waited
	// behind the first through the outage.
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var count uint64
	var sum float64
	for _, f := range families {
		if f.GetName() == "eventgate_client_queue_delay_seconds" {
			h := f.GetMetric()[0].GetHistogram()
			count, sum = h.GetSampleCount(), h.GetSampleSum()
		}
	}
	if count != n || sum <= 0 {
		t.Errorf("queue delay: %d observations summing %vs, want %d and more than 0", count, sum, n)
	}
}

func TestFullQueueBlocksInsteadOfDropping(t *testing.T) {
	s, url := startSensor(t)
	hold := make(chan struct{})
	s.set(http.StatusOK, hold) // a stalled sensor: requests wait
	d := newDispatcher(t, Options{QueueSize: 2, AttemptTimeout: time.Minute}, url)

	// One event in flight, two queued: the fourth must wait.
	for i := range 3 {
		if err := d.Dispatch(t.Context(), "src", event(i)); err != nil {
			t.Fatal(err)
		}
	}
	testenv.Eventually(t, 5*time.Second, 5*time.Millisecond, func() error {
		if d.queued() != 2 {
			return fmt.Errorf("%d queued", d.queued())
		}
		return nil
	})
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	if err := d.Dispatch(ctx, "src", event(3)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Dispatch into a full queue = %v, want it to block until the deadline", err)
	}
	close(hold)
	if err := d.Dispatch(t.Context(), "src", event(3)); err != nil {
		t.Fatal(err)
	}
	got := waitFor(t, s, 4)
	if len(got) != 4 || got[3].id != "evt-3" {
		t.Fatalf("got %+v", got)
	}
}

func TestStalledSensorIsRetriedAfterTheAttemptTimeout(t *testing.T) {
	s, url := startSensor(t)
	hold := make(chan struct{})
	s.set(http.StatusOK, hold)
	d := newDispatcher(t, Options{AttemptTimeout: 50 * time.Millisecond}, url)
	if err := d.Dispatch(t.Context(), "src", event(0)); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 5*time.Second, 5*time.Millisecond, func() error {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.requests < 2 {
			return fmt.Errorf("%d attempts", s.requests)
		}
		return nil
	})
	s.set(http.StatusOK, nil)
	close(hold)
	if got := waitFor(t, s, 1); got[0].id != "evt-0" {
		t.Fatalf("got %+v", got)
	}
}

func TestCloseDrainsTheQueue(t *testing.T) {
	s, url := startSensor(t)
	d := newDispatcher(t, Options{}, url)
	for i := range 20 {
		if err := d.Dispatch(t.Context(), "src", event(i)); err != nil {
			t.Fatal(err)
		}
	}
	if left := d.Close(10 * time.Second); left != 0 {
		t.Fatalf("%d events left after drain", left)
	}
	if err := d.Dispatch(t.Context(), "src", event(99)); err != nil && !errors.Is(err, ErrClosed) {
		t.Fatalf("Dispatch after Close: %v", err)
	}
	if got := len(s.got()); got != 20 {
		t.Fatalf("sensor got %d events, want 20", got)
	}
}

func TestNATSDelivery(t *testing.T) {
	natsURL := natsenv.Start(t, -1)
	nc, err := nats.Connect(natsURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	msgs := make(chan *nats.Msg, 10)
	sub, err := nc.ChanSubscribe("sensors.calendar", msgs)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}

	sender, err := NewNATSSender(natsURL, "sensors.calendar")
	if err != nil {
		t.Fatal(err)
	}
	d := New([]Target{{Name: "nats-sensor", Sender: sender}}, Options{Backoff: fastBackoff, Log: testenv.Logger(t)})
	defer d.Close(0)
	for i := range 3 {
		if err := d.Dispatch(t.Context(), "src", event(i)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3 {
		select {
		case m := <-msgs:
			var got cloudevents.Event
			if err := json.Unmarshal(m.Data, &got); err != nil {
				t.Fatalf("message %d %q: %v", i, m.Data, err)
			}
			if got.ID() != "evt-"+strconv.Itoa(i) || got.Source() != "calendar-gateway" || string(got.Data()) != fmt.Sprintf(`{"n":%d}`, i) {
				t.Errorf("message %d = %s", i, got)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("message %d not delivered", i)
		}
	}
}

func TestBackoffDelay(t *testing.T) {
	b := Backoff{Initial: 100 * time.Millisecond, Max: time.Second, Factor: 2, Jitter: 0.5}
	for attempt, want := range []time.Duration{100, 200, 400, 800, 1000, 1000} {
		want *= time.Millisecond
		for range 50 {
			got := b.Delay(attempt)
			if got > want || got < want/2 {
				t.Fatalf("Delay(%d) = %s, want within [%s, %s]", attempt, got, want/2, want)
			}
		}
	}
}

func TestConcurrencyKeepsSeveralDeliveriesInFlight(t *testing.T) {
	s, url := startSensor(t)
	hold := make(chan struct{})
	s.set(http.StatusOK, hold)
	d := newDispatcher(t, Options{Concurrency: 3, AttemptTimeout: time.Minute}, url)
	for i := range 5 {
		// Each its own key: events of one key are never in flight together.
		if err := d.DispatchThen(t.Context(), Key{Source: "src", Ordering: strconv.Itoa(i)}, event(i), nil); err != nil {
			t.Fatal(err)
		}
	}
	// Three held at the sensor at once, the other two still queued.
	testenv.Eventually(t, 5*time.Second, 5*time.Millisecond, func() error {
		s.mu.Lock()
		requests := s.requests
		s.mu.Unlock()
		if requests != 3 || d.queued() != 2 {
			return fmt.Errorf("%d requests at the sensor, %d queued; want 3 and 2", requests, d.queued())
		}
		return nil
	})
	close(hold)
	got := waitFor(t, s, 5)
	ids := map[string]bool{}
	for _, r := range got {
		ids[r.id] = true
	}
	if len(got) != 5 || len(ids) != 5 {
		t.Fatalf("got %+v, want each of the 5 events once", got)
	}
}

func TestBatchesWhatIsWaitingInOrder(t *testing.T) {
	s, url := startSensor(t)
	hold := make(chan struct{})
	s.set(http.StatusOK, hold)
	d := newDispatcher(t, Options{BatchSize: 4, AttemptTimeout: time.Minute}, url)

	requests := func() int {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.requests
	}
	// The first event goes alone while the queue is empty; the sensor holds it while the
	// other eight queue up.
	dispatch := func(i int) {
		if err := d.Dispatch(t.Context(), "src", event(i)); err != nil {
			t.Fatal(err)
		}
	}
	dispatch(0)
	testenv.Eventually(t, 5*time.Second, 5*time.Millisecond, func() error {
		if n := requests(); n != 1 {
			return fmt.Errorf("%d requests at the sensor, want the first event's", n)
		}
		return nil
	})
	for i := 1; i < 9; i++ {
		dispatch(i)
	}
	// Fail what comes next once: a refused batch is retried whole.
	s.set(http.StatusServiceUnavailable, nil)
	close(hold)
	testenv.Eventually(t, 5*time.Second, 5*time.Millisecond, func() error {
		if n := requests(); n < 3 {
			return fmt.Errorf("%d requests, want a refused one after the held one", n)
		}
		return nil
	})
	s.set(http.StatusOK, nil)

	got := waitFor(t, s, 9)
	if len(got) != 9 {
		t.Fatalf("got %d events, want each of the 9 once: %+v", len(got), got)
	}
	for i, r := range got {
		if want := "evt-" + strconv.Itoa(i); r.id != want || r.data != fmt.Sprintf(`{"n":%d}`, i) || r.subject != "every-second" {
			t.Fatalf("event %d is %+v, want %s: order or content lost", i, r, want)
		}
	}
	s.mu.Lock()
	batches := s.batches
	s.mu.Unlock()
	if batches != 2 {
		t.Errorf("%d batches accepted, want 2 (the 8 waiting events, 4 a request)", batches)
	}
	if s.base64Batches != 0 {
		t.Errorf("%d batches carried the events' JSON data as data_base64, want it as JSON", s.base64Batches)
	}
	// The sensor records a batch before its answer reaches the worker, which counts the
	// batch delivered only then.
	testenv.Eventually(t, 10*time.Second, 5*time.Millisecond, func() error {
		if pending := d.pending(); pending != 0 {
			return fmt.Errorf("%d events still pending after delivery", pending)
		}
		return nil
	})
}

// gateSender holds each delivery until the test releases one, so that a test knows exactly
// how many are in flight.
type gateSender struct {
	started chan string
	release chan struct{}
}

func (s *gateSender) Send(ctx context.Context, ev cloudevents.Event) error {
	s.started <- ev.ID()
	select {
	case <-s.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *gateSender) Close() error   { return nil }
func (s *gateSender) String() string { return "gate" }

func TestPendingCountsEveryDeliveryInFlight(t *testing.T) {
	s := &gateSender{started: make(chan string, 10), release: make(chan struct{})}
	d := New([]Target{{Name: "gate", Sender: s}}, Options{Concurrency: 3, AttemptTimeout: time.Minute, Backoff: fastBackoff, Log: testenv.Logger(t)})
	t.Cleanup(func() { d.Close(0) })
	for i := range 4 {
		if err := d.DispatchThen(t.Context(), Key{Source: "src", Ordering: strconv.Itoa(i)}, event(i), nil); err != nil {
			t.Fatal(err)
		}
	}
	for range 3 {
		select {
		case <-s.started:
		case <-time.After(10 * time.Second):
			t.Fatal("fewer than 3 deliveries started")
		}
	}
	// Three in flight, one queued: one worker's count must not overwrite another's.
	if got := d.pending(); got != 4 {
		t.Fatalf("pending = %d with 3 deliveries in flight and 1 queued, want 4", got)
	}
	s.release <- struct{}{}
	testenv.Eventually(t, 10*time.Second, 5*time.Millisecond, func() error {
		if got := d.pending(); got != 3 {
			return fmt.Errorf("pending = %d after one delivery, want 3", got)
		}
		return nil
	})
	if left := d.Close(0); left != 3 {
		t.Fatalf("Close left %d events, want 3", left)
	}
}

// An event published while the NATS server is away is held back and retried, not kept in
// nats.go's reconnect buffer and settled Delivered: a stop or a crash before the reconnect
// would lose it after it was acknowledged upstream.
func TestNATSDeliveryWaitsForTheServerToComeBack(t *testing.T) {
	ns := natsenv.StartServer(t, &natsserver.Options{Host: "127.0.0.1", Port: -1})
	port := ns.Addr().(*net.TCPAddr).Port
	sender, err := NewNATSSender(ns.ClientURL(), "sensors.calendar")
	if err != nil {
		t.Fatal(err)
	}
	d := New([]Target{{Name: "nats-sensor", Sender: sender}}, Options{Backoff: fastBackoff, Log: testenv.Logger(t)})
	t.Cleanup(func() { d.Close(0) })
	outcomes := make(chan Outcome, 2)
	settle := func(o Outcome) { outcomes <- o }
	if err := d.DispatchThen(t.Context(), Key{Source: "src"}, event(0), settle); err != nil {
		t.Fatal(err)
	}
	if o := <-outcomes; o != Delivered {
		t.Fatalf("event 0 while NATS is up: %v, want delivered", o)
	}

	ns.Shutdown()
	ns.WaitForShutdown()
	if err := d.DispatchThen(t.Context(), Key{Source: "src"}, event(1), settle); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, 10*time.Millisecond, func() error {
		if st := d.Sensors()[0]; st.Reachable || st.Retries == 0 {
			return fmt.Errorf("sensor status %+v, want unreachable with retries", st)
		}
		return nil
	})
	select {
	case o := <-outcomes:
		t.Fatalf("event 1 settled %v while the NATS server is down", o)
	default:
	}

	// The server comes back on the same port, with a subscriber: the event reaches it.
	ns2 := natsenv.StartServer(t, &natsserver.Options{Host: "127.0.0.1", Port: port})
	nc, err := nats.Connect(ns2.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	sub, err := nc.SubscribeSync("sensors.calendar")
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	m, err := sub.NextMsg(20 * time.Second)
	if err != nil {
		t.Fatalf("event 1 never reached NATS once it was back: %v", err)
	}
	var got cloudevents.Event
	if err := json.Unmarshal(m.Data, &got); err != nil || got.ID() != "evt-1" {
		t.Fatalf("message %q (%v), want evt-1", m.Data, err)
	}
	select {
	case o := <-outcomes:
		if o != Delivered {
			t.Errorf("event 1: %v, want delivered", o)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("event 1 not settled after it reached NATS")
	}
}
