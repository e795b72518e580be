package main

import (
	"fmt"
	"log/slog"
	"sync"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/eventgate/eventgate/pkg/server"
)

// settlement is the fate of the delivery with tag on the acker's channel.
type settlement struct {
	tag  uint64
	fate server.Fate
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
	return func(f server.Fate) {
		a.mu.Lock()
		defer a.mu.Unlock()
		if a.over {
			a.log.Debug("fate of a delivery of a closed channel: left to the broker, which requeued it", "deliveryTag", tag, "fate", f)
			return
		}
		a.queue <- settlement{tag: tag, fate: f} // never blocks: see acker
	}
}

// run settles the queued fates until end is called, then those already queued, and returns.
// It stops at the first failure, which closes failed: the channel is broken and the session
// ends.
func (a *acker) run(end <-chan struct{}) {
	for {
		select {
		case s := <-a.queue:
			if err := a.settle(s); err != nil {
				a.fail(err)
				return
			}
		case <-end:
			a.finish()
			return
		}
	}
}

// finish settles what is queued once the session ended, while the channel may still be
// open: a fate known before the end is not left to a redelivery.
func (a *acker) finish() {
	a.mu.Lock()
	a.over = true
	a.mu.Unlock()
	for {
		select {
		case s := <-a.queue:
			if err := a.settle(s); err != nil {
				a.log.Debug("settle at the end of a session: left to the broker", "deliveryTag", s.tag, "fate", s.fate, "error", err)
				return
			}
		default:
			return
		}
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

func (a *acker) settle(s settlement) error {
	switch s.fate {
	case server.FateDelivered, server.FateDropped:
		if err := a.ch.Ack(s.tag, false); err != nil {
			return fmt.Errorf("acknowledge delivery %d: %w", s.tag, err)
		}
	default: // retry, lost: the broker delivers it again
		if err := a.ch.Nack(s.tag, false, true); err != nil {
			return fmt.Errorf("requeue delivery %d: %w", s.tag, err)
		}
	}
	return nil
}
