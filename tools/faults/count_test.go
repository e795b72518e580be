package faults

import (
	"slices"
	"testing"
)

// The suite's verdicts are only as good as its counting: these cases pin down what a loss,
// a duplicate and an order violation are under at-least-once redelivery.
func TestCount(t *testing.T) {
	m := func(stream string, seqs ...int) []mark {
		out := make([]mark, len(seqs))
		for i, s := range seqs {
			out[i] = mark{Stream: stream, Seq: s}
		}
		return out
	}
	acked := func(ms ...mark) map[mark]bool {
		out := map[mark]bool{}
		for _, x := range ms {
			out[x] = true
		}
		return out
	}
	tests := []struct {
		name           string
		deliveries     []mark
		acked          map[mark]bool
		ordered        bool
		wantDelivered  int
		wantDuplicates int
		wantLost       []mark
		wantViolations []string
	}{
		{name: "in order", deliveries: m("p0", 1, 2, 3), acked: acked(m("p0", 1, 2, 3)...), ordered: true,
			wantDelivered: 3},
		{name: "redelivered after a crash: duplicates, not violations", deliveries: m("p0", 1, 2, 3, 2, 3, 4), acked: acked(m("p0", 1, 2, 3, 4)...), ordered: true,
			wantDelivered: 4, wantDuplicates: 2},
		{name: "first delivery after a newer one", deliveries: m("p0", 1, 3, 2, 4), acked: acked(m("p0", 1, 2, 3, 4)...), ordered: true,
			wantDelivered: 4, wantViolations: []string{"p0#2 after #3"}},
		{name: "unordered source", deliveries: m("p0", 1, 3, 2), acked: acked(m("p0", 1, 2, 3)...),
			wantDelivered: 3},
		{name: "streams are apart", deliveries: append(m("p1", 5), m("p0", 1)...), acked: acked(), ordered: true,
			wantDelivered: 2},
		{name: "acknowledged, never delivered", deliveries: m("p0", 1, 3), acked: acked(m("p0", 1, 2, 3)...), ordered: true,
			wantDelivered: 2, wantLost: m("p0", 2)},
		{name: "unacknowledged and undelivered is no loss", deliveries: m("p0", 1), acked: acked(m("p0", 1)...),
			wantDelivered: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := count(tc.deliveries, tc.acked, tc.ordered)
			if got.delivered != tc.wantDelivered || got.duplicates != tc.wantDuplicates ||
				!slices.Equal(got.lost, tc.wantLost) || !slices.Equal(got.violations, tc.wantViolations) {
				t.Errorf("delivered %d, duplicates %d, lost %v, violations %v; want %d, %d, %v, %v",
					got.delivered, got.duplicates, got.lost, got.violations,
					tc.wantDelivered, tc.wantDuplicates, tc.wantLost, tc.wantViolations)
			}
		})
	}
}

func TestSpans(t *testing.T) {
	ms := []mark{{"p0", 1}, {"p0", 2}, {"p0", 3}, {"p0", 5}, {"p1", 6}, {"p1", 7}}
	if got, want := spans(ms), []string{"p0#1-3", "p0#5", "p1#6-7"}; !slices.Equal(got, want) {
		t.Errorf("spans %v, want %v", got, want)
	}
}
