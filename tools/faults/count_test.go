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
	// d are deliveries of stream's seqs; a negative seq is one the broker resent.
	d := func(stream string, seqs ...int) []delivery {
		out := make([]delivery, len(seqs))
		for i, s := range seqs {
			out[i] = delivery{mark: mark{Stream: stream, Seq: max(s, -s)}, pos: int64(max(s, -s)), resent: s < 0}
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
		deliveries     []delivery
		acked          map[mark]bool
		ordered        bool
		wantDelivered  int
		wantDuplicates int
		wantLost       []mark
		wantViolations []string
		wantResent     []string
	}{
		{name: "in order", deliveries: d("p0", 1, 2, 3), acked: acked(m("p0", 1, 2, 3)...), ordered: true,
			wantDelivered: 3},
		{name: "redelivered after a crash: duplicates, not violations", deliveries: d("p0", 1, 2, 3, 2, 3, 4), acked: acked(m("p0", 1, 2, 3, 4)...), ordered: true,
			wantDelivered: 4, wantDuplicates: 2},
		{name: "first delivery after a newer one", deliveries: d("p0", 1, 3, 2, 4), acked: acked(m("p0", 1, 2, 3, 4)...), ordered: true,
			wantDelivered: 4, wantViolations: []string{"p0#2 after #3"}},
		{name: "resent by the broker out of order", deliveries: d("p0", 1, 3, -2, 4), acked: acked(m("p0", 1, 2, 3, 4)...), ordered: true,
			wantDelivered: 4, wantResent: []string{"p0#2 after #3"}},
		{name: "a log's order, not the seqs'", deliveries: []delivery{{mark{"p0", 3}, 10, false}, {mark{"p0", 1}, 11, false}, {mark{"p0", 2}, 12, false}, {mark{"p0", 3}, 13, false}},
			acked: acked(m("p0", 1, 2, 3)...), ordered: true, wantDelivered: 3, wantDuplicates: 1},
		{name: "a log read out of order", deliveries: []delivery{{mark{"p0", 1}, 10, false}, {mark{"p0", 3}, 12, false}, {mark{"p0", 2}, 11, false}},
			acked: acked(m("p0", 1, 2, 3)...), ordered: true, wantDelivered: 3, wantViolations: []string{"p0#2 (at 11) after 12"}},
		{name: "unordered source", deliveries: d("p0", 1, 3, 2), acked: acked(m("p0", 1, 2, 3)...),
			wantDelivered: 3},
		{name: "streams are apart", deliveries: append(d("p1", 5), d("p0", 1)...), acked: acked(), ordered: true,
			wantDelivered: 2},
		{name: "acknowledged, never delivered", deliveries: d("p0", 1, 3), acked: acked(m("p0", 1, 2, 3)...), ordered: true,
			wantDelivered: 2, wantLost: m("p0", 2)},
		{name: "unacknowledged and undelivered is no loss", deliveries: d("p0", 1), acked: acked(m("p0", 1)...),
			wantDelivered: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := count(tc.deliveries, tc.acked, tc.ordered)
			if got.delivered != tc.wantDelivered || got.duplicates != tc.wantDuplicates ||
				!slices.Equal(got.lost, tc.wantLost) || !slices.Equal(names(got.violations), tc.wantViolations) ||
				!slices.Equal(names(got.resentOutOfOrder), tc.wantResent) {
				t.Errorf("delivered %d, duplicates %d, lost %v, violations %v, resent out of order %v; want %d, %d, %v, %v, %v",
					got.delivered, got.duplicates, got.lost, got.violations, got.resentOutOfOrder,
					tc.wantDelivered, tc.wantDuplicates, tc.wantLost, tc.wantViolations, tc.wantResent)
			}
		})
	}
}

func names(vs []violation) []string {
	var out []string
	for _, v := range vs {
		out = append(out, v.String())
	}
	return out
}

func TestSpans(t *testing.T) {
	ms := []mark{{"p0", 1}, {"p0", 2}, {"p0", 3}, {"p0", 5}, {"p1", 6}, {"p1", 7}}
	if got, want := spans(ms), []string{"p0#1-3", "p0#5", "p1#6-7"}; !slices.Equal(got, want) {
		t.Errorf("spans %v, want %v", got, want)
	}
}
