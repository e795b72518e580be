package dispatch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/eventgate/eventgate/pkg/sensorsink"
	"github.com/eventgate/eventgate/pkg/testenv"
)

// scriptedSensor is a real HTTP sensor that answers each event as the test scripts it by
// id: a list of statuses, one per attempt, the last repeated; 200 for unscripted events. It
// records the ids it answered 2xx in order, and the attempts each had. A batch is answered
// with the first non-2xx status of its events, if any.
type scriptedSensor struct {
	mu       sync.Mutex
	script   map[string][]int
	attempts map[string]int
	took     []string
	body     string // the body of non-2xx answers
	batches  int    // requests of more than one event
}

func startScriptedSensor(t *testing.T, script map[string][]int) (*scriptedSensor, string) {
	s := &scriptedSensor{script: script, attempts: map[string]int{}, body: "no such order"}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		ids := []string{r.Header.Get("Ce-Id")}
		if cehttp.IsHTTPBatch(r.Header) {
			var batch []cloudevents.Event
			if err := json.Unmarshal(body, &batch); err != nil {
				t.Errorf("sensor: undecodable batch: %v", err)
			}
			ids = ids[:0]
			for _, ev := range batch {
				ids = append(ids, ev.ID())
			}
		}
		s.mu.Lock()
		if len(ids) > 1 {
			s.batches++
		}
		status := http.StatusOK
		for _, id := range ids {
			st := http.StatusOK
			if answers := s.script[id]; len(answers) > 0 {
				st = answers[min(s.attempts[id], len(answers)-1)]
			}
			s.attempts[id]++
			if status/100 == 2 {
				status = st
			}
		}
		if status/100 == 2 {
			s.took = append(s.took, ids...)
		}
		answer := s.body
		s.mu.Unlock()
		w.WriteHeader(status)
		if status/100 != 2 {
			io.WriteString(w, answer)
		}
	}))
	t.Cleanup(srv.Close)
	return s, srv.URL
}

func (s *scriptedSensor) state() (took []string, attempts map[string]int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.took), maps(s.attempts)
}

func maps(m map[string]int) map[string]int {
	out := make(map[string]int, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// policyDispatcher delivers to the sensor at url under pol, with the dead-letter sink at
// dls (none when empty).
func policyDispatcher(t *testing.T, url, dls string, pol Policy, opts Options) (*Dispatcher, *Metrics) {
	t.Helper()
	s, err := NewHTTPSender(url)
	if err != nil {
		t.Fatal(err)
	}
	if dls != "" {
		if pol.DeadLetter, err = NewHTTPSender(dls); err != nil {
			t.Fatal(err)
		}
	}
	if opts.Backoff == (Backoff{}) {
		opts.Backoff = fastBackoff
	}
	opts.Log = testenv.Logger(t)
	opts.Metrics = NewMetrics(prometheus.NewRegistry())
	d := New([]Target{{Name: "scripted", Sender: s, Policy: pol}}, opts)
	t.Cleanup(func() { d.Close(0) })
	return d, opts.Metrics
}

// outcomes collects the outcome of each dispatched event, by id.
type outcomes struct {
	mu  sync.Mutex
	got map[string]Outcome
	n   map[string]int
}

func newOutcomes() *outcomes { return &outcomes{got: map[string]Outcome{}, n: map[string]int{}} }

func (o *outcomes) of(id string) func(Outcome) {
	return func(out Outcome) {
		o.mu.Lock()
		defer o.mu.Unlock()
		o.got[id] = out
		o.n[id]++
	}
}

// wait returns the outcomes once there are n, failing if any event settled twice.
func (o *outcomes) wait(t *testing.T, n int) map[string]Outcome {
	t.Helper()
	testenv.Eventually(t, 10*time.Second, 5*time.Millisecond, func() error {
		o.mu.Lock()
		defer o.mu.Unlock()
		if len(o.got) < n {
			return fmt.Errorf("%d events settled, want %d: %v", len(o.got), n, o.got)
		}
		return nil
	})
	o.mu.Lock()
	defer o.mu.Unlock()
	for id, n := range o.n {
		if n != 1 {
			t.Errorf("%s settled %d times, want once", id, n)
		}
	}
	return o.got
}

func dispatchAll(t *testing.T, d *Dispatcher, key Key, o *outcomes, ids ...int) {
	t.Helper()
	for _, i := range ids {
		if err := d.DispatchThen(t.Context(), key, event(i), o.of(fmt.Sprintf("evt-%d", i))); err != nil {
			t.Fatal(err)
		}
	}
}

func deadLetters(t *testing.T, dls *testenv.Sensor, n int) []cloudevents.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	got, err := dls.Wait(ctx, n)
	if err != nil {
		t.Fatalf("dead-letter sink: %v", err)
	}
	return got
}

// checkDeadLetter checks the extensions that say why ev was dead-lettered.
func checkDeadLetter(t *testing.T, ev cloudevents.Event, dest string, code, attempts int, reason string) {
	t.Helper()
	ext := ev.Extensions()
	want := map[string]string{ExtensionErrorDest: dest, ExtensionAttempts: fmt.Sprint(attempts), ExtensionReason: reason}
	if code != 0 {
		want[ExtensionErrorCode] = fmt.Sprint(code)
	} else if _, ok := ext[ExtensionErrorCode]; ok {
		t.Errorf("%s: %s = %v, want none (no answer)", ev.ID(), ExtensionErrorCode, ext[ExtensionErrorCode])
	}
	for name, v := range want {
		if got := fmt.Sprint(ext[name]); got != v {
			t.Errorf("%s: extension %s = %q, want %q", ev.ID(), name, got, v)
		}
	}
	if data := fmt.Sprint(ext[ExtensionErrorData]); data == "" || (code != 0 && !strings.Contains(data, fmt.Sprint(code))) {
		t.Errorf("%s: extension %s = %q, want the error, with the status", ev.ID(), ExtensionErrorData, data)
	}
}

func TestRejectedEventIsDeadLetteredWithoutRetry(t *testing.T) {
	sensor, url := startScriptedSensor(t, map[string][]int{"evt-1": {http.StatusBadRequest}})
	dls := testenv.StartSensor(t, sensorsink.Endpoints{})
	d, m := policyDispatcher(t, url, dls.URL, Policy{}, Options{})
	o := newOutcomes()
	dispatchAll(t, d, Key{Source: "src"}, o, 0, 1, 2)

	got := o.wait(t, 3)
	if got["evt-0"] != Delivered || got["evt-1"] != Dropped || got["evt-2"] != Delivered {
		t.Errorf("outcomes %v, want evt-1 dropped (dead-lettered), the others delivered", got)
	}
	letters := deadLetters(t, dls, 1)
	if len(letters) != 1 || letters[0].ID() != "evt-1" {
		t.Fatalf("dead-letter sink got %d events (%v), want evt-1 only", len(letters), letters)
	}
	checkDeadLetter(t, letters[0], url, http.StatusBadRequest, 1, "rejected")
	if data := fmt.Sprint(letters[0].Extensions()[ExtensionErrorData]); !strings.Contains(data, "no such order") {
		t.Errorf("%s = %q, want the sensor's answer in it", ExtensionErrorData, data)
	}
	if string(letters[0].Data()) != `{"n":1}` || letters[0].Source() != "calendar-gateway" {
		t.Errorf("dead letter %s, want the event itself", letters[0])
	}
	took, attempts := sensor.state()
	if attempts["evt-1"] != 1 {
		t.Errorf("evt-1 attempted %d times, want once: a 400 is not retried", attempts["evt-1"])
	}
	if !slices.Equal(took, []string{"evt-0", "evt-2"}) {
		t.Errorf("sensor took %v, want evt-0, evt-2: the refused event does not block its key", took)
	}
	st := d.Sensors()[0]
	if st.DeadLettered != 1 || st.Retries != 0 || st.Dropped != 0 || st.DeadLetterSink != dls.URL || !st.Reachable {
		t.Errorf("status %+v, want 1 dead-lettered, no retry, no drop, the sink named, reachable (it answered)", st)
	}
	if n := testutil.ToFloat64(m.deadLettered.WithLabelValues("scripted", "rejected")); n != 1 {
		t.Errorf("eventgate_client_events_dead_lettered_total{reason=rejected} = %v, want 1", n)
	}
}

func TestRetryableAnswersAreRetriedUntilTaken(t *testing.T) {
	for _, code := range []int{http.StatusServiceUnavailable, http.StatusInternalServerError, http.StatusNotFound, http.StatusConflict, http.StatusTooManyRequests} {
		t.Run(fmt.Sprint(code), func(t *testing.T) {
			sensor, url := startScriptedSensor(t, map[string][]int{"evt-0": {code, code, code, http.StatusOK}})
			dls := testenv.StartSensor(t, sensorsink.Endpoints{})
			retries := int32(5)
			d, m := policyDispatcher(t, url, dls.URL, Policy{MaxAttempts: int(retries) + 1}, Options{})
			o := newOutcomes()
			dispatchAll(t, d, Key{Source: "src"}, o, 0)
			if got := o.wait(t, 1); got["evt-0"] != Delivered {
				t.Fatalf("outcome %v, want delivered", got)
			}
			_, attempts := sensor.state()
			if attempts["evt-0"] != 4 {
				t.Errorf("evt-0 attempted %d times, want 4 (three %d answers, then 200)", attempts["evt-0"], code)
			}
			if n := len(dls.Received()); n != 0 {
				t.Errorf("dead-letter sink got %d events, want none", n)
			}
			if st := d.Sensors()[0]; st.Retries != 3 || st.DeadLettered != 0 {
				t.Errorf("status %+v, want 3 retries, nothing dead-lettered", st)
			}
			if n := testutil.ToFloat64(m.retries.WithLabelValues("scripted")); n != 3 {
				t.Errorf("eventgate_client_delivery_retries_total = %v, want 3", n)
			}
		})
	}
}

// The default policy retries for ever: a sensor failing for long holds the event.
func TestDefaultPolicyRetriesForEver(t *testing.T) {
	sensor := testenv.StartSensor(t, sensorsink.Endpoints{}, sensorsink.WithFailFirst(30))
	d := newDispatcher(t, Options{Backoff: Backoff{Initial: time.Millisecond, Max: time.Millisecond, Factor: 2}}, sensor.URL)
	o := newOutcomes()
	dispatchAll(t, d, Key{Source: "src"}, o, 0)
	if got := o.wait(t, 1); got["evt-0"] != Delivered {
		t.Fatalf("outcome %v, want delivered after 30 failures", got)
	}
	if st := d.Sensors()[0]; st.Retries != 30 {
		t.Errorf("status %+v, want 30 retries", st)
	}
}

func TestExhaustedRetriesAreDeadLettered(t *testing.T) {
	always503 := map[string][]int{"evt-0": {http.StatusServiceUnavailable}}
	for _, tc := range []struct {
		name     string
		pol      Policy
		attempts int // exactly, or at least with a budget
	}{
		{"retry count", Policy{MaxAttempts: 3}, 3},
		{"retry budget", Policy{RetryFor: 100 * time.Millisecond, Backoff: Backoff{Initial: 20 * time.Millisecond, Max: 20 * time.Millisecond, Factor: 1}}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sensor, url := startScriptedSensor(t, always503)
			dls := testenv.StartSensor(t, sensorsink.Endpoints{})
			d, m := policyDispatcher(t, url, dls.URL, tc.pol, Options{})
			o := newOutcomes()
			start := time.Now()
			dispatchAll(t, d, Key{Source: "src"}, o, 0, 1)
			got := o.wait(t, 2)
			if got["evt-0"] != Dropped || got["evt-1"] != Delivered {
				t.Errorf("outcomes %v, want evt-0 dropped (dead-lettered), evt-1 delivered after it", got)
			}
			_, attempts := sensor.state()
			n := attempts["evt-0"]
			if tc.attempts != 0 && n != tc.attempts {
				t.Errorf("evt-0 attempted %d times, want %d", n, tc.attempts)
			}
			if tc.pol.RetryFor > 0 {
				// 20ms apart within 100ms: the first attempt and four or five retries, and
				// the budget, not a count, ended them.
				if n < 4 || n > 6 || time.Since(start) > 5*time.Second {
					t.Errorf("evt-0 attempted %d times in %s, want about 5 (every 20ms for 100ms)", n, time.Since(start))
				}
			}
			letters := deadLetters(t, dls, 1)
			checkDeadLetter(t, letters[0], url, http.StatusServiceUnavailable, n, "retries_exhausted")
			if v := testutil.ToFloat64(m.deadLettered.WithLabelValues("scripted", "retries_exhausted")); v != 1 {
				t.Errorf("eventgate_client_events_dead_lettered_total{reason=retries_exhausted} = %v, want 1", v)
			}
		})
	}
}

// A sensor that never answers (connection refused) is dead-lettered without a status.
func TestUnreachableSensorIsDeadLetteredWithoutStatus(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	dls := testenv.StartSensor(t, sensorsink.Endpoints{})
	d, _ := policyDispatcher(t, url, dls.URL, Policy{MaxAttempts: 2}, Options{})
	o := newOutcomes()
	dispatchAll(t, d, Key{Source: "src"}, o, 0)
	if got := o.wait(t, 1); got["evt-0"] != Dropped {
		t.Errorf("outcome %v, want dropped (dead-lettered)", got)
	}
	checkDeadLetter(t, deadLetters(t, dls, 1)[0], url, 0, 2, "retries_exhausted")
}

func TestDroppedWithoutDeadLetterSink(t *testing.T) {
	sensor, url := startScriptedSensor(t, map[string][]int{"evt-0": {http.StatusBadRequest}, "evt-1": {http.StatusServiceUnavailable}})
	d, m := policyDispatcher(t, url, "", Policy{MaxAttempts: 2}, Options{})
	o := newOutcomes()
	dispatchAll(t, d, Key{Source: "src"}, o, 0, 1, 2)
	got := o.wait(t, 3)
	if got["evt-0"] != Dropped || got["evt-1"] != Dropped || got["evt-2"] != Delivered {
		t.Errorf("outcomes %v, want evt-0 and evt-1 dropped, evt-2 delivered", got)
	}
	took, attempts := sensor.state()
	if attempts["evt-0"] != 1 || attempts["evt-1"] != 2 || !slices.Equal(took, []string{"evt-2"}) {
		t.Errorf("attempts %v, took %v; want evt-0 once (400), evt-1 twice (503, retry 1), evt-2 taken", attempts, took)
	}
	for reason, want := range map[string]float64{"rejected": 1, "retries_exhausted": 1} {
		if n := testutil.ToFloat64(m.dropped.WithLabelValues("scripted", reason)); n != want {
			t.Errorf("eventgate_client_events_dropped_total{reason=%s} = %v, want %v", reason, n, want)
		}
	}
	if st := d.Sensors()[0]; st.Dropped != 2 || st.DeadLettered != 0 || st.Pending != 0 {
		t.Errorf("status %+v, want 2 dropped, none pending", st)
	}
}

// A dead-letter sink that fails is retried: the event is never lost, nor settled before
// the sink took it.
func TestDeadLetterSinkIsRetriedUntilItTakes(t *testing.T) {
	_, url := startScriptedSensor(t, map[string][]int{"evt-0": {http.StatusUnprocessableEntity}})
	dls := testenv.StartSensor(t, sensorsink.Endpoints{}, sensorsink.WithFailFirst(3))
	d, m := policyDispatcher(t, url, dls.URL, Policy{}, Options{})
	o := newOutcomes()
	dispatchAll(t, d, Key{Source: "src"}, o, 0)
	if got := o.wait(t, 1); got["evt-0"] != Dropped {
		t.Errorf("outcome %v, want dropped (dead-lettered)", got)
	}
	if letters := dls.Received(); len(letters) != 1 || letters[0].ID() != "evt-0" {
		t.Fatalf("dead-letter sink holds %v when the event settled, want evt-0", letters)
	}
	if n := testutil.ToFloat64(m.deadLetterFailures.WithLabelValues("scripted")); n != 3 {
		t.Errorf("eventgate_client_dead_letter_failures_total = %v, want 3", n)
	}
}

// Within a key, a retried event holds the key until it settles, and a refused one no
// longer blocks it: the sensor takes the key's events in order, less the refused.
func TestOrderWithinAKeyAcrossRetriesAndDeadLetters(t *testing.T) {
	for _, tc := range []struct{ concurrency, batch int }{{8, 1}, {1, 4}} {
		t.Run(fmt.Sprintf("concurrency %d batch %d", tc.concurrency, tc.batch), func(t *testing.T) {
			script := map[string][]int{
				"evt-2": {503, 503, 200},
				"evt-3": {400},
				"evt-5": {500, 429, 200},
				"evt-7": {503}, // for ever: exhausts its 4 attempts
				"evt-8": {404, 200},
			}
			sensor, url := startScriptedSensor(t, script)
			dls := testenv.StartSensor(t, sensorsink.Endpoints{})
			d, _ := policyDispatcher(t, url, dls.URL, Policy{MaxAttempts: 4}, Options{Concurrency: tc.concurrency, BatchSize: tc.batch})
			o := newOutcomes()
			keys := []Key{{Source: "src", Ordering: "a"}, {Source: "src", Ordering: "b"}}
			for i := range 12 {
				dispatchAll(t, d, keys[i%2], o, i)
			}
			got := o.wait(t, 12)
			for id, out := range got {
				want := Delivered
				if id == "evt-3" || id == "evt-7" {
					want = Dropped
				}
				if out != want {
					t.Errorf("%s %s, want %s", id, out, want)
				}
			}
			took, _ := sensor.state()
			var a, b []string
			for _, id := range took {
				var i int
				fmt.Sscanf(id, "evt-%d", &i)
				if i%2 == 0 {
					a = append(a, id)
				} else {
					b = append(b, id)
				}
			}
			if want := []string{"evt-0", "evt-2", "evt-4", "evt-6", "evt-8", "evt-10"}; !slices.Equal(a, want) {
				t.Errorf("key a taken as %v, want %v", a, want)
			}
			if want := []string{"evt-1", "evt-5", "evt-9", "evt-11"}; !slices.Equal(b, want) {
				t.Errorf("key b taken as %v, want %v", b, want)
			}
			if sensor.mu.Lock(); tc.batch > 1 && sensor.batches == 0 {
				t.Error("no batch delivered: the test would not cover batches")
			}
			sensor.mu.Unlock()
			var letters []string
			for _, ev := range deadLetters(t, dls, 2) {
				letters = append(letters, ev.ID())
			}
			slices.Sort(letters)
			if !slices.Equal(letters, []string{"evt-3", "evt-7"}) {
				t.Errorf("dead letters %v, want evt-3 and evt-7", letters)
			}
		})
	}
}

// A batch out of retries is tried once more event by event when the sensor answered it
// (one event may be at fault), and given up whole when the sensor did not answer (it is
// down for all of them).
func TestBatchOutOfRetries(t *testing.T) {
	t.Run("answered", func(t *testing.T) {
		sensor, url := startScriptedSensor(t, map[string][]int{"evt-2": {http.StatusInternalServerError}})
		dls := testenv.StartSensor(t, sensorsink.Endpoints{})
		d, _ := policyDispatcher(t, url, dls.URL, Policy{MaxAttempts: 2}, Options{Concurrency: 1, BatchSize: 8})
		o := newOutcomes()
		dispatchAll(t, d, Key{Source: "src"}, o, 0, 1, 2, 3, 4)
		got := o.wait(t, 5)
		for i := range 5 {
			id, want := fmt.Sprintf("evt-%d", i), Delivered
			if i == 2 {
				want = Dropped
			}
			if got[id] != want {
				t.Errorf("%s %s, want %s", id, got[id], want)
			}
		}
		took, attempts := sensor.state()
		if !slices.Equal(took, []string{"evt-0", "evt-1", "evt-3", "evt-4"}) {
			t.Errorf("sensor took %v, want evt-0, 1, 3, 4 in order", took)
		}
		letters := deadLetters(t, dls, 1)
		if len(letters) != 1 || letters[0].ID() != "evt-2" {
			t.Fatalf("dead letters %v, want evt-2 alone", letters)
		}
		// Two attempts in the batch (if it was one: the test needs it), one alone.
		if sensor.mu.Lock(); sensor.batches == 0 {
			t.Error("no batch delivered: the test would not cover batches")
		}
		sensor.mu.Unlock()
		if attempts["evt-2"] != 3 {
			t.Errorf("evt-2 attempted %d times, want 3: 2 in its batch, one more alone", attempts["evt-2"])
		}
		checkDeadLetter(t, letters[0], url, http.StatusInternalServerError, 3, "retries_exhausted")
	})
	t.Run("unanswered", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		url := srv.URL
		srv.Close()
		dls := testenv.StartSensor(t, sensorsink.Endpoints{})
		s, err := NewHTTPSender(url)
		if err != nil {
			t.Fatal(err)
		}
		counted := &countingSender{BatchSender: s.(BatchSender), gate: make(chan struct{}), entered: make(chan struct{}, 1)}
		pol := Policy{MaxAttempts: 2}
		if pol.DeadLetter, err = NewHTTPSender(dls.URL); err != nil {
			t.Fatal(err)
		}
		d := New([]Target{{Name: "down", Sender: counted, Policy: pol}}, Options{Concurrency: 1, BatchSize: 8, Backoff: fastBackoff, Log: testenv.Logger(t)})
		t.Cleanup(func() { d.Close(0) })
		o := newOutcomes()
		// The only worker is held on an event of another key while the five are queued,
		// so that they make one batch whatever the machine's load.
		dispatchAll(t, d, Key{Source: "holder"}, o, 9)
		<-counted.entered
		dispatchAll(t, d, Key{Source: "src"}, o, 0, 1, 2, 3, 4)
		close(counted.gate)
		for id, out := range o.wait(t, 6) {
			if out != Dropped {
				t.Errorf("%s %s, want dropped (dead-lettered)", id, out)
			}
		}
		deadLetters(t, dls, 6)
		counted.mu.Lock()
		defer counted.mu.Unlock()
		// The holder alone twice; then one batch of the five tried twice and given up
		// whole, none of its events alone again.
		if counted.batches != 2 || counted.singles != 2 {
			t.Errorf("%d batch attempts, %d single ones; want 2 and 2 (the holder's: the batch given up whole)", counted.batches, counted.singles)
		}
	})
}

// countingSender counts the attempts of a BatchSender, single and batched. With a gate,
// every attempt waits for it to close, after saying so on entered.
type countingSender struct {
	BatchSender
	gate, entered    chan struct{}
	mu               sync.Mutex
	singles, batches int
}

func (c *countingSender) hold() {
	if c.gate == nil {
		return
	}
	select {
	case c.entered <- struct{}{}:
	default:
	}
	<-c.gate
}

func (c *countingSender) Send(ctx context.Context, ev cloudevents.Event) error {
	c.hold()
	c.mu.Lock()
	c.singles++
	c.mu.Unlock()
	return c.BatchSender.Send(ctx, ev)
}

func (c *countingSender) SendBatch(ctx context.Context, evs []cloudevents.Event) error {
	c.hold()
	c.mu.Lock()
	c.batches++
	c.mu.Unlock()
	return c.BatchSender.SendBatch(ctx, evs)
}

func TestRetryable(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{errors.New("connection refused"), true},
		{&AnswerError{Code: 500, Err: errors.New("500")}, true},
		{&AnswerError{Code: 503, Err: errors.New("503")}, true},
		{&AnswerError{Code: 404, Err: errors.New("404")}, true},
		{&AnswerError{Code: 409, Err: errors.New("409")}, true},
		{&AnswerError{Code: 429, Err: errors.New("429")}, true},
		{fmt.Errorf("wrapped: %w", &AnswerError{Code: 502, Err: errors.New("502")}), true},
		{&AnswerError{Code: 400, Err: errors.New("400")}, false},
		{&AnswerError{Code: 401, Err: errors.New("401")}, false},
		{&AnswerError{Code: 403, Err: errors.New("403")}, false},
		{&AnswerError{Code: 413, Err: errors.New("413")}, false},
		{&AnswerError{Code: 422, Err: errors.New("422")}, false},
	} {
		if got := Retryable(tc.err); got != tc.want {
			t.Errorf("Retryable(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

func TestBackoffPolicies(t *testing.T) {
	ms := time.Millisecond
	exp := Backoff{Initial: 10 * ms, Max: 50 * ms, Factor: 2}
	lin := Backoff{Initial: 10 * ms, Max: 35 * ms, Factor: 2, Linear: true}
	for i, want := range []time.Duration{10 * ms, 20 * ms, 40 * ms, 50 * ms, 50 * ms} {
		if got := exp.Delay(i); got != want {
			t.Errorf("exponential Delay(%d) = %s, want %s", i, got, want)
		}
	}
	for i, want := range []time.Duration{10 * ms, 20 * ms, 30 * ms, 35 * ms, 35 * ms} {
		if got := lin.Delay(i); got != want {
			t.Errorf("linear Delay(%d) = %s, want %s", i, got, want)
		}
	}
}
