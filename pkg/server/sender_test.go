package server

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/eventgate/eventgate/protos/gateways"
)

// sentEvents is an eventStream that takes every event.
type sentEvents struct{ ctx context.Context }

func (s sentEvents) Send(*gateways.Event) error { return nil }
func (s sentEvents) Context() context.Context   { return s.ctx }

// An ack on its way when the source ended reaches a call that is closing: its events were
// reported Lost, and the ack must neither report a second fate nor end the call with
// InvalidArgument, which the client takes as an invalid source and stops it until its
// config changes.
func TestAckAfterCloseIsIgnored(t *testing.T) {
	s := newWindowSender("source", sentEvents{t.Context()}, 10)
	var (
		mu    sync.Mutex
		fates = map[int][]Fate{}
	)
	for i := range 2 {
		ev := Event{Payload: []byte("{}"), OnFate: func(f Fate) {
			mu.Lock()
			defer mu.Unlock()
			fates[i] = append(fates[i], f)
		}}
		if err := s.emit(t.Context(), ev); err != nil {
			t.Fatal(err)
		}
	}
	// Before the close, an ack for an event never sent is the client's error.
	if err := s.ack(&gateways.Ack{Seqs: []uint64{3}, Outcome: gateways.Ack_OUTCOME_DELIVERED}); err == nil || !strings.Contains(err.Error(), "no event with that seq") {
		t.Fatalf("ack of seq 3 before close: %v, want the client's error", err)
	}
	s.close()
	if err := s.ack(&gateways.Ack{Seqs: []uint64{1, 2}, Outcome: gateways.Ack_OUTCOME_DELIVERED}); err != nil {
		t.Errorf("ack after close: %v, want it ignored", err)
	}
	mu.Lock()
	defer mu.Unlock()
	for i := range 2 {
		if !slices.Equal(fates[i], []Fate{FateLost}) {
			t.Errorf("event %d: fates %v, want only Lost", i, fates[i])
		}
	}
}
