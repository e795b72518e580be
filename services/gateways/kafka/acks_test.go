package main

import (
	"testing"

	"github.com/eventgate/eventgate/pkg/server"
)

func TestPartitionAcksCommitTheSettledPrefix(t *testing.T) {
	type fate struct {
		offset int64
		fate   server.Fate
	}
	tests := []struct {
		name    string
		tracked []int64 // handed over, in order
		fates   []fate
		want    int64 // committable after the fates
		again   int   // fates that must come again
	}{
		{name: "nothing settled", tracked: []int64{0, 1, 2}, want: -1},
		{name: "in order", tracked: []int64{0, 1, 2}, fates: []fate{{0, server.FateDelivered}, {1, server.FateDropped}}, want: 2},
		{name: "a gap holds the rest", tracked: []int64{0, 1, 2}, fates: []fate{{2, server.FateDelivered}, {1, server.FateDelivered}}, want: -1},
		{name: "the gap filled", tracked: []int64{0, 1, 2}, fates: []fate{{2, server.FateDelivered}, {1, server.FateDelivered}, {0, server.FateDelivered}}, want: 3},
		// Offsets of a compacted topic or after transaction markers skip numbers.
		{name: "offsets with holes", tracked: []int64{3, 7, 20}, fates: []fate{{7, server.FateDelivered}, {3, server.FateDelivered}}, want: 8},
		{name: "retry stops the prefix", tracked: []int64{0, 1, 2}, fates: []fate{{0, server.FateDelivered}, {1, server.FateRetry}, {2, server.FateDelivered}}, want: 1, again: 1},
		{name: "lost stops the prefix", tracked: []int64{0, 1}, fates: []fate{{0, server.FateLost}, {1, server.FateDelivered}}, want: -1, again: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := newPartitionAcks()
			for _, o := range tc.tracked {
				if !p.track(o) {
					t.Fatalf("track %d refused", o)
				}
			}
			again := 0
			for _, f := range tc.fates {
				if p.settle(f.offset, f.fate) {
					again++
				}
			}
			if got := p.committable(); got != tc.want {
				t.Errorf("committable %d, want %d", got, tc.want)
			}
			if again != tc.again {
				t.Errorf("%d fates to come again, want %d", again, tc.again)
			}
		})
	}
}

// One record never settled holds the partition at maxTracked records, however many behind
// it are settled; settling it makes room.
func TestPartitionAcksAreBounded(t *testing.T) {
	p := newPartitionAcks()
	for o := range int64(maxTracked) {
		if !p.track(o) {
			t.Fatalf("track %d of %d refused", o, maxTracked)
		}
		if o > 0 {
			p.settle(o, server.FateDelivered)
		}
	}
	if p.track(maxTracked) {
		t.Fatalf("tracked %d records behind an unsettled one, want at most %d", maxTracked+1, maxTracked)
	}
	p.settle(0, server.FateDelivered)
	select {
	case <-p.room:
	default:
		t.Fatal("no room signalled once the first record settled")
	}
	if !p.track(maxTracked) || p.committable() != maxTracked {
		t.Fatalf("after the first record settled: committable %d, want %d, and room to track", p.committable(), maxTracked)
	}
}
