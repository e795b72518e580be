package faults

import (
	"encoding/json"
	"fmt"
	"maps"
	"sort"
	"strings"
	"sync"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/eventgate/eventgate/pkg/testenv"
)

// mark is what the load puts in every event's body: its ordering key (a Kafka partition, the
// AMQP queue, the MQTT topic; one per webhook caller) and its number there, from 1.
type mark struct {
	Stream string `json:"stream"`
	Seq    int    `json:"seq"`
}

func (m mark) String() string { return fmt.Sprintf("%s#%d", m.Stream, m.Seq) }

func (m mark) body() []byte {
	b, _ := json.Marshal(m)
	return b
}

// ledger records what the load sent and what the upstream acknowledged (a webhook's 200,
// a broker's produce ack, publisher confirm or PUBACK).
type ledger struct {
	mu    sync.Mutex
	next  map[string]int // stream -> last seq handed out
	sent  int
	acked map[mark]bool
}

func newLedger() *ledger { return &ledger{next: map[string]int{}, acked: map[mark]bool{}} }

// newEvents hands out the next n marks of stream.
func (l *ledger) newEvents(stream string, n int) []mark {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]mark, n)
	for i := range out {
		l.next[stream]++
		out[i] = mark{Stream: stream, Seq: l.next[stream]}
	}
	l.sent += n
	return out
}

func (l *ledger) ack(ms ...mark) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, m := range ms {
		l.acked[m] = true
	}
}

func (l *ledger) counts() (sent, acked int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sent, len(l.acked)
}

func (l *ledger) ackedMarks() map[mark]bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return maps.Clone(l.acked)
}

// delivery is an event as the sensor took it.
type delivery struct {
	mark
	// pos is its place in the stream's order: the record's offset where the broker keeps
	// a log (Kafka), else the load's seq. A producer that retries a failed batch may
	// write part of it twice, and the copies in another order than the seqs: the log is
	// the order a consumer owes.
	pos int64
	// resent: the broker flagged the message as sent again (MQTT's DUP), after a
	// connection that ended before the gateway acknowledged it.
	resent bool
}

// violation is an event delivered for the first time after a later event of its stream.
type violation struct {
	mark
	pos, after int64
	resent     bool
}

func (v violation) String() string {
	if v.pos == int64(v.Seq) {
		return fmt.Sprintf("%s after #%d", v.mark, v.after)
	}
	return fmt.Sprintf("%s (at %d) after %d", v.mark, v.pos, v.after)
}

// tally is what reached the sensor, against what was acknowledged.
type tally struct {
	delivered  int    // distinct events
	duplicates int    // deliveries of an event already delivered
	lost       []mark // acknowledged upstream, never delivered
	// violations are out of order; resentOutOfOrder too, but the broker had resent them
	// (below).
	violations, resentOutOfOrder []violation
}

// count reads the sensor's deliveries in the order it took them. Under at-least-once a
// redelivered event may arrive after newer ones: that is a duplicate, not an order
// violation, as long as it was delivered before. An event delivered for the first time
// after a newer event of its stream is a violation (when ordered): a sensor that reads the
// stream in order would see it out of order.
//
// Violations among messages the broker resent are counted apart: mochi (the MQTT test
// broker) resends a session's unacknowledged messages sorted by their creation second's
// low 16 bits over a map, so those of one second go out in any order, against MQTT
// 3.1.1's 4.6.0-1 (resend in the original order). The gateway can keep no better order
// than it is given.
func count(deliveries []delivery, acked map[mark]bool, ordered bool) tally {
	var t tally
	seen := make(map[mark]bool, len(deliveries))
	newest := map[string]int64{}
	for _, d := range deliveries {
		m := d.mark
		if seen[m] {
			t.duplicates++
			continue
		}
		seen[m] = true
		t.delivered++
		if ordered && d.pos < newest[m.Stream] {
			v := violation{mark: m, pos: d.pos, after: newest[m.Stream], resent: d.resent}
			if d.resent {
				t.resentOutOfOrder = append(t.resentOutOfOrder, v)
			} else {
				t.violations = append(t.violations, v)
			}
		}
		newest[m.Stream] = max(newest[m.Stream], d.pos)
	}
	for m := range acked {
		if !seen[m] {
			t.lost = append(t.lost, m)
		}
	}
	sort.Slice(t.lost, func(i, j int) bool {
		a, b := t.lost[i], t.lost[j]
		return a.Stream < b.Stream || a.Stream == b.Stream && a.Seq < b.Seq
	})
	return t
}

// deliveries reads the mark out of each event the sensor took, in order; an event
// without one is reported by its id.
func deliveries(events []event.Event) (out []delivery, unreadable []string) {
	out = make([]delivery, 0, len(events))
	for _, ev := range events {
		var p struct {
			Body      json.RawMessage `json:"body"`
			Duplicate bool            `json:"duplicate"` // MQTT's DUP flag
			Offset    *int64          `json:"offset"`    // Kafka's
		}
		var m mark
		err := json.Unmarshal(ev.Data(), &p)
		if err == nil {
			var body []byte
			if body, err = testenv.BodyBytes(p.Body); err == nil {
				err = json.Unmarshal(body, &m)
			}
		}
		if err != nil || m.Stream == "" {
			unreadable = append(unreadable, ev.ID())
			continue
		}
		d := delivery{mark: m, pos: int64(m.Seq), resent: p.Duplicate}
		if p.Offset != nil {
			d.pos = *p.Offset
		}
		out = append(out, d)
	}
	return out, unreadable
}

// spans names marks (sorted) as runs: "p0#12-40, p1#7".
func spans(ms []mark) []string {
	var out []string
	for i := 0; i < len(ms); {
		j := i
		for j+1 < len(ms) && ms[j+1].Stream == ms[i].Stream && ms[j+1].Seq == ms[j].Seq+1 {
			j++
		}
		if j == i {
			out = append(out, ms[i].String())
		} else {
			out = append(out, fmt.Sprintf("%s-%d", ms[i], ms[j].Seq))
		}
		i = j + 1
	}
	return out
}

// sample names at most n of items, and how many more there are.
func sample[T any](items []T, n int) string {
	names := make([]string, 0, n)
	for _, it := range items[:min(n, len(items))] {
		names = append(names, fmt.Sprint(it))
	}
	s := strings.Join(names, ", ")
	if len(items) > n {
		s += fmt.Sprintf(" ... (%d more)", len(items)-n)
	}
	return s
}
