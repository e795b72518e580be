package dispatch

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"

	"github.com/eventgate/eventgate/pkg/testenv"
)

// keyExtension carries a test event's key, which randomSender reads back.
const keyExtension = "testkey"

// quiet is how long a test waits to see that nothing more starts: a broken dispatcher
// fails there, a working one never.
const quiet = 300 * time.Millisecond

func keyedEvent(i int, key Key) cloudevents.Event {
	ev := event(i)
	ev.SetExtension(keyExtension, key.Source+"/"+key.Ordering)
	return ev
}

// idGate holds each delivery until the test releases that event.
type idGate struct {
	started chan string
	mu      sync.Mutex
	gates   map[string]chan struct{}
}

func (g *idGate) gate(id string) chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.gates[id] == nil {
		g.gates[id] = make(chan struct{})
	}
	return g.gates[id]
}

func (g *idGate) Send(ctx context.Context, ev cloudevents.Event) error {
	g.started <- ev.ID()
	select {
	case <-g.gate(ev.ID()):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (g *idGate) Close() error   { return nil }
func (g *idGate) String() string { return "gate" }

func TestKeysInFlightOneDeliveryEach(t *testing.T) {
	g := &idGate{started: make(chan string, 20), gates: map[string]chan struct{}{}}
	d := New([]Target{{Name: "gate", Sender: g}}, Options{Concurrency: 4, AttemptTimeout: time.Minute, Backoff: fastBackoff, Log: testenv.Logger(t)})
	t.Cleanup(func() { d.Close(0) })
	// Three keys, three events each: 0, 1 and 2 are key a's, 3 to 5 b's, 6 to 8 the
	// source's keyless ones.
	keys := []Key{{Source: "src", Ordering: "a"}, {Source: "src", Ordering: "b"}, {Source: "other"}}
	for i := range 9 {
		if err := d.DispatchThen(t.Context(), keys[i/3], event(i), nil); err != nil {
			t.Fatal(err)
		}
	}
	next := func() string {
		t.Helper()
		select {
		case id := <-g.started:
			return id
		case <-time.After(10 * time.Second):
			t.Fatal("no delivery started")
			return ""
		}
	}
	// With four workers, each key has its first event in flight and no more: a fourth
	// delivery would be a second one of some key.
	started := map[string]bool{next(): true, next(): true, next(): true}
	if !started["evt-0"] || !started["evt-3"] || !started["evt-6"] {
		t.Fatalf("deliveries started: %v; want evt-0, evt-3 and evt-6, each key's first", started)
	}
	select {
	case id := <-g.started:
		t.Fatalf("%s started while its key's previous event was in flight", id)
	case <-time.After(quiet):
	}
	// Each delivery's end starts its key's next event, in order, whatever the order the
	// keys end in.
	for _, step := range []struct{ end, want string }{
		{"evt-3", "evt-4"}, {"evt-0", "evt-1"}, {"evt-6", "evt-7"}, {"evt-4", "evt-5"},
		{"evt-7", "evt-8"}, {"evt-1", "evt-2"},
	} {
		close(g.gate(step.end))
		if got := next(); got != step.want {
			t.Fatalf("%s ended, then %s started; want its key's next, %s", step.end, got, step.want)
		}
	}
}

// randomSender fails and delays deliveries at random, checks that no two deliveries of one
// key overlap, and records what it took in the order it took it.
type randomSender struct {
	mu       sync.Mutex
	rnd      *rand.Rand
	inFlight map[string]int // by key
	most     int            // deliveries in flight at once, at most
	now      int
	took     map[string][]string // by key, event ids
	overlap  error
}

func (s *randomSender) Send(ctx context.Context, ev cloudevents.Event) error {
	key := fmt.Sprint(ev.Extensions()[keyExtension])
	s.mu.Lock()
	s.inFlight[key]++
	if s.inFlight[key] > 1 && s.overlap == nil {
		s.overlap = fmt.Errorf("two deliveries of key %s at once (%s)", key, ev.ID())
	}
	s.now++
	s.most = max(s.most, s.now)
	fail := s.rnd.IntN(5) == 0
	delay := time.Duration(s.rnd.IntN(2000)) * time.Microsecond
	s.mu.Unlock()

	timer := time.NewTimer(delay)
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-ctx.Done():
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	s.inFlight[key]--
	s.now--
	if fail || ctx.Err() != nil {
		return errors.New("random failure")
	}
	s.took[key] = append(s.took[key], ev.ID())
	return nil
}

func (s *randomSender) Close() error   { return nil }
func (s *randomSender) String() string { return "random" }

func TestOrderWithinKeysUnderConcurrencyAndRetries(t *testing.T) {
	s := &randomSender{rnd: rand.New(rand.NewPCG(12, 13)), inFlight: map[string]int{}, took: map[string][]string{}}
	backoff := Backoff{Initial: time.Millisecond, Max: 2 * time.Millisecond, Factor: 2}
	d := New([]Target{{Name: "random", Sender: s}}, Options{Concurrency: 8, AttemptTimeout: time.Minute, Backoff: backoff, Log: testenv.Logger(t)})
	t.Cleanup(func() { d.Close(0) })

	// Twelve keys of two sources; "src" without an ordering key is the source's own order.
	var keys []Key
	for i := range 11 {
		keys = append(keys, Key{Source: "src", Ordering: strconv.Itoa(i)})
	}
	keys = append(keys, Key{Source: "src"})
	const events = 600
	rnd := rand.New(rand.NewPCG(1, 2))
	want := map[string][]string{}
	var delivered sync.WaitGroup
	for i := range events {
		key := keys[rnd.IntN(len(keys))]
		ev := keyedEvent(i, key)
		want[key.Source+"/"+key.Ordering] = append(want[key.Source+"/"+key.Ordering], ev.ID())
		delivered.Add(1)
		settled := func(o Outcome) {
			if o != Delivered {
				t.Errorf("%s settled %s, want delivered (retried until taken)", ev.ID(), o)
			}
			delivered.Done()
		}
		if err := d.DispatchThen(t.Context(), key, ev, settled); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan struct{})
	go func() { delivered.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatalf("not every event delivered: %d pending", d.pending())
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.overlap != nil {
		t.Fatal(s.overlap)
	}
	for key, ids := range want {
		if got := s.took[key]; fmt.Sprint(got) != fmt.Sprint(ids) {
			t.Errorf("key %s: delivered %v, want %v (each once, in order)", key, got, ids)
		}
	}
	// Different keys did overlap: concurrency was used, not just allowed.
	if s.most < 2 {
		t.Errorf("at most %d deliveries in flight at once, want several (8 workers, 12 keys)", s.most)
	}
}

// refusingSender is randomSender that also refuses some events for good (400), always the
// same ones: those whose id is in refuse.
type refusingSender struct {
	*randomSender
	refuse map[string]bool
}

func (s *refusingSender) Send(ctx context.Context, ev cloudevents.Event) error {
	if s.refuse[ev.ID()] {
		return &AnswerError{Code: 400, Err: errors.New("400 Bad Request")}
	}
	return s.randomSender.Send(ctx, ev)
}

// recordingSink is a dead-letter sink that records what it took, by key.
type recordingSink struct {
	mu   sync.Mutex
	took map[string][]string
}

func (s *recordingSink) Send(_ context.Context, ev cloudevents.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := fmt.Sprint(ev.Extensions()[keyExtension])
	s.took[key] = append(s.took[key], ev.ID())
	return nil
}

func (s *recordingSink) Close() error   { return nil }
func (s *recordingSink) String() string { return "recording" }

// With random failures, random refusals and a bounded policy, every event of a key ends
// exactly once, at the sensor or the dead-letter sink, and the sensor takes each key's
// events in order: a retried event holds its key, a given up one lets it move on.
func TestOrderWithinKeysAcrossRetriesAndGiveUps(t *testing.T) {
	rnd := rand.New(rand.NewPCG(3, 4))
	s := &refusingSender{randomSender: &randomSender{rnd: rand.New(rand.NewPCG(12, 13)), inFlight: map[string]int{}, took: map[string][]string{}}, refuse: map[string]bool{}}
	sink := &recordingSink{took: map[string][]string{}}
	backoff := Backoff{Initial: time.Millisecond, Max: 2 * time.Millisecond, Factor: 2}
	// One attempt in five fails at random: three attempts leave about one event in 125 out
	// of retries, besides the refused ones.
	pol := Policy{MaxAttempts: 3, DeadLetter: sink}
	d := New([]Target{{Name: "random", Sender: s, Policy: pol}}, Options{Concurrency: 8, AttemptTimeout: time.Minute, Backoff: backoff, Log: testenv.Logger(t)})
	t.Cleanup(func() { d.Close(0) })

	var keys []Key
	for i := range 7 {
		keys = append(keys, Key{Source: "src", Ordering: strconv.Itoa(i)})
	}
	keys = append(keys, Key{Source: "src"})
	const events = 600
	want := map[string][]string{}
	var mu sync.Mutex
	outcome := map[string]Outcome{}
	var settled sync.WaitGroup
	// Which events the sensor refuses is settled before the workers read it.
	type keyed struct {
		key Key
		ev  cloudevents.Event
	}
	var evs []keyed
	for i := range events {
		key := keys[rnd.IntN(len(keys))]
		ev := keyedEvent(i, key)
		if rnd.IntN(10) == 0 {
			s.refuse[ev.ID()] = true
		}
		want[key.Source+"/"+key.Ordering] = append(want[key.Source+"/"+key.Ordering], ev.ID())
		evs = append(evs, keyed{key, ev})
	}
	for _, e := range evs {
		key, ev := e.key, e.ev
		settled.Add(1)
		id := ev.ID()
		if err := d.DispatchThen(t.Context(), key, ev, func(o Outcome) {
			mu.Lock()
			defer mu.Unlock()
			if _, twice := outcome[id]; twice {
				t.Errorf("%s settled twice", id)
			}
			outcome[id] = o
			settled.Done()
		}); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan struct{})
	go func() { settled.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatalf("not every event settled: %d pending", d.pending())
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	sink.mu.Lock()
	defer sink.mu.Unlock()
	if s.overlap != nil {
		t.Fatal(s.overlap)
	}
	refused, exhausted := 0, 0
	for key, ids := range want {
		took, letters := s.took[key], sink.took[key]
		inSink := map[string]bool{}
		for _, id := range letters {
			inSink[id] = true
		}
		var wantTook, wantLetters []string
		for _, id := range ids {
			if inSink[id] {
				wantLetters = append(wantLetters, id)
				if outcome[id] != Dropped {
					t.Errorf("%s dead-lettered but settled %s", id, outcome[id])
				}
				if !s.refuse[id] {
					exhausted++
				}
				continue
			}
			if s.refuse[id] {
				t.Errorf("%s refused for good but not dead-lettered", id)
			}
			if outcome[id] != Delivered {
				t.Errorf("%s taken but settled %s", id, outcome[id])
			}
			wantTook = append(wantTook, id)
		}
		if fmt.Sprint(took) != fmt.Sprint(wantTook) {
			t.Errorf("key %s: sensor took %v, want %v (each once, in order)", key, took, wantTook)
		}
		if fmt.Sprint(letters) != fmt.Sprint(wantLetters) {
			t.Errorf("key %s: sink took %v, want %v (each once, in order)", key, letters, wantLetters)
		}
		refused += len(wantLetters)
	}
	if refused == 0 || s.most < 2 {
		t.Errorf("%d events dead-lettered, at most %d deliveries at once: the test did not exercise give-ups under concurrency", refused, s.most)
	}
	t.Logf("%d dead-lettered, %d of them out of retries; at most %d deliveries at once", refused, exhausted, s.most)
}
