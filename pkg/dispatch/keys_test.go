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
