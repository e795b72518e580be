package main

import (
	"fmt"
	"log/slog"
	"slices"
	"sync"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/eventgate/eventgate/pkg/server"
)

// settlement is the fate of the delivery with tag on the acker's channel, or its rejection
// (reject, without requeue) when it could not be made into an event.
type settlement struct {
	tag    uint64
	fate   server.Fate
	reject bool
}

// acker settles the deliveries of one channel once their fate is known: Ack when the client
// delivered or dropped the event, Nack with requeue when it is to be retried or its call
// ended first. Fates come on the framework's goroutine, which must not block, so they are
// queued for run. The queue holds prefetch settlements and never fills: a fate is queued
// only for a delivery that stays unacknowledged until run takes it, and the broker keeps
// no more than prefetch deliveries of the channel unacknowledged.
type acker struct {
	ch    *amqp.Channel
	log   *slog.Logger
	queue chan settlement
	batch []settlement // run's, reused

	mu sync.Mutex
	// over is set once the session ends. Delivery tags belong to their channel, which is
	// closing then: a later fate must not be settled on the next session's channel. The
	// broker requeues what a closed channel left unacknowledged by itself.
	over bool
	// failed is closed when run stopped on an error, which err holds.
	failed chan struct{}
	err    error
}

func newAcker(ch *amqp.Channel, prefetch int, log *slog.Logger) *acker {
	return &acker{ch: ch, log: log, queue: make(chan settlement, prefetch), failed: make(chan struct{})}
}

// onFate is the OnFate of the delivery with tag.
func (a *acker) onFate(tag uint64) func(server.Fate) {
	return func(f server.Fate) { a.put(settlement{tag: tag, fate: f}) }
}

// reject has the delivery with tag rejected without requeue. It goes through run, as the
// fates do, so that the acknowledgements up to a tag count it settled.
func (a *acker) reject(tag uint64) { a.put(settlement{tag: tag, reject: true}) }

func (a *acker) put(s settlement) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.over {
		a.log.Debug("settlement of a delivery of a closed channel: left to the broker, which requeued it", "deliveryTag", s.tag, "fate", s.fate, "reject", s.reject)
		return
	}
	a.queue <- s // never blocks: see acker
}

// run settles the queued fates until end is called, then those already queued, and returns.
// It stops at the first failure, which closes failed: the channel is broken and the session
// ends.
func (a *acker) run(end <-chan struct{}) {
	var l ledger
	for {
		select {
		case s := <-a.queue:
			if err := a.settleQueued(&l, s); err != nil {
				a.fail(err)
				return
			}
		case <-end:
			a.finish(&l)
			return
		}
	}
}

// settleQueued settles first and whatever else is queued, acknowledging the deliveries that
// extend the settled prefix of tags with one Ack (multiple), the others one by one.
func (a *acker) settleQueued(l *ledger, first settlement) error {
	batch := append(a.batch[:0], first)
	// Only run takes from the queue: what it holds now is there to take.
	for n := len(a.queue); n > 0; n-- {
		batch = append(batch, <-a.queue)
	}
	a.batch = batch
	var acks []uint64
	var nacks []settlement
	for _, s := range batch {
		if !s.reject && (s.fate == server.FateDelivered || s.fate == server.FateDropped) {
			acks = append(acks, s.tag)
		} else {
			nacks = append(nacks, s)
		}
	}
	// Retry, lost: the broker delivers it again; rejected: it dead-letters or drops it.
	// Sent first, so that the Ack up to a tag does not cover them.
	for _, s := range nacks {
		if err := a.ch.Nack(s.tag, false, !s.reject); err != nil {
			return fmt.Errorf("nack delivery %d (requeue %t): %w", s.tag, !s.reject, err)
		}
		l.settled(s.tag)
	}
	upTo, single := l.acknowledge(acks)
	if upTo > 0 {
		if err := a.ch.Ack(upTo, true); err != nil {
			return fmt.Errorf("acknowledge deliveries up to %d: %w", upTo, err)
		}
	}
	for _, tag := range single {
		if err := a.ch.Ack(tag, false); err != nil {
			return fmt.Errorf("acknowledge delivery %d: %w", tag, err)
		}
	}
	return nil
}

// finish settles what is queued once the session ended, while the channel may still be
// open: a fate known before the end is not left to a redelivery.
func (a *acker) finish(l *ledger) {
	a.mu.Lock()
	a.over = true
	a.mu.Unlock()
	select {
	case s := <-a.queue:
		if err := a.settleQueued(l, s); err != nil {
			a.log.Debug("settle at the end of a session: left to the broker", "error", err)
		}
	default:
	}
}

func (a *acker) fail(err error) {
	a.mu.Lock()
	a.over = true
	a.err = err
	a.mu.Unlock()
	close(a.failed)
}

// failure is why run stopped early (read once failed is closed).
func (a *acker) failure() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.err
}

// ledger tracks which delivery tags of a channel are settled, so that acknowledgements in
// order go out as one Ack of every tag up to the last (multiple), which costs the broker and
// the connection one frame instead of one per delivery. The broker numbers a channel's
// deliveries 1, 2, ... and the session hands every one over in that order, so each tag up to
// the highest is eventually settled (or the session ends).
type ledger struct {
	// floor: every tag up to it is settled.
	floor uint64
	// above are the settled tags above floor (acknowledged out of order, or requeued):
	// at most prefetch of them.
	above map[uint64]struct{}
}

// settled records tag as settled by other means (requeued).
func (l *ledger) settled(tag uint64) {
	if l.above == nil {
		l.above = map[uint64]struct{}{}
	}
	l.above[tag] = struct{}{}
	l.advance()
}

// acknowledge records tags as acknowledged (it sorts them) and says how to send that: one
// Ack of every unsettled tag up to upTo (0: none), and one Ack each of single. Tags up to
// upTo that were settled before are no longer outstanding at the broker, so the multiple
// Ack leaves them be.
func (l *ledger) acknowledge(tags []uint64) (upTo uint64, single []uint64) {
	slices.Sort(tags)
	for _, tag := range tags {
		if tag == l.floor+1 {
			l.floor, upTo = tag, tag
			l.advance()
			continue
		}
		// A tag below it is unsettled, and the tags still to come are higher.
		if l.above == nil {
			l.above = map[uint64]struct{}{}
		}
		l.above[tag] = struct{}{}
		single = append(single, tag)
	}
	return upTo, single
}

// advance moves floor over the settled tags right above it.
func (l *ledger) advance() {
	for {
		if _, ok := l.above[l.floor+1]; !ok {
			return
		}
		delete(l.above, l.floor+1)
		l.floor++
	}
}
