package main

import (
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventgate/eventgate/pkg/config"
	"github.com/eventgate/eventgate/pkg/server"
)

// acks settles the JetStream messages of one connection with the fates of their events.
// OnFate runs on the framework's goroutine and must not block, while an ack is a publish
// that may wait for the socket: fates are queued here, never blocking, and sent by run's
// goroutine. While an event is in flight (in the window, at the client, at the sensors),
// its message is kept from expiring by a progress ack every half ackWait, so ackWait is
// how long a vanished gateway delays redelivery, not how long a delivery may take.
type acks struct {
	log     *slog.Logger
	backoff config.Backoff
	ackWait time.Duration

	mu       sync.Mutex
	inFlight map[*inFlight]struct{}
	queued   []settlement

	wake     chan struct{} // one slot: run has queued fates to send
	done     chan struct{} // closed by release
	finished chan struct{} // closed when run returns
}

// inFlight is a message whose event was handed to emit and whose fate is not known yet.
type inFlight struct {
	msg          jetstream.Msg
	numDelivered uint64
}

type settlement struct {
	*inFlight
	fate server.Fate
}

func newAcks(log *slog.Logger, backoff config.Backoff, ackWait time.Duration) *acks {
	a := &acks{
		log: log, backoff: backoff, ackWait: ackWait,
		inFlight: make(map[*inFlight]struct{}),
		wake:     make(chan struct{}, 1),
		done:     make(chan struct{}),
		finished: make(chan struct{}),
	}
	go a.run()
	return a
}

// track records msg as in flight and returns the OnFate of its event.
func (a *acks) track(msg jetstream.Msg, numDelivered uint64) (*inFlight, func(server.Fate)) {
	m := &inFlight{msg: msg, numDelivered: numDelivered}
	a.mu.Lock()
	a.inFlight[m] = struct{}{}
	a.mu.Unlock()
	return m, func(f server.Fate) {
		a.mu.Lock()
		defer a.mu.Unlock()
		if _, ok := a.inFlight[m]; !ok {
			return // released with its connection: already given back to the server
		}
		delete(a.inFlight, m)
		a.queued = append(a.queued, settlement{m, f})
		select {
		case a.wake <- struct{}{}:
		default:
		}
	}
}

// refused gives back at once a message whose event emit did not accept (no fate comes).
func (a *acks) refused(m *inFlight) {
	a.mu.Lock()
	delete(a.inFlight, m)
	a.mu.Unlock()
	a.send([]settlement{{m, server.FateLost}})
}

func (a *acks) run() {
	defer close(a.finished)
	progress := time.NewTicker(max(a.ackWait/2, time.Millisecond))
	defer progress.Stop()
	for {
		select {
		case <-a.wake:
			a.mu.Lock()
			queued := a.queued
			a.queued = nil
			a.mu.Unlock()
			a.send(queued)
		case <-progress.C:
			a.mu.Lock()
			held := make([]jetstream.Msg, 0, len(a.inFlight))
			for m := range a.inFlight {
				held = append(held, m.msg)
			}
			a.mu.Unlock()
			for _, msg := range held {
				// An error means the connection is gone (its messages are redelivered
				// after ackWait anyway) or the message was settled meanwhile.
				_ = msg.InProgress()
			}
		case <-a.done:
			return
		}
	}
}

// send acknowledges what was delivered or dropped and gives back the rest: a retry after
// the source's backoff for the number of deliveries so far (an event the sensors refuse
// does not come back at once, again and again), a lost event at once.
func (a *acks) send(settled []settlement) {
	failed := 0
	var lastErr error
	for _, s := range settled {
		var err error
		switch s.fate {
		case server.FateDelivered, server.FateDropped:
			err = s.msg.Ack()
		case server.FateRetry:
			err = s.msg.NakWithDelay(a.backoff.Delay(int(s.numDelivered) - 1))
		default:
			err = s.msg.Nak()
		}
		if err != nil {
			failed, lastErr = failed+1, err
		}
	}
	if failed > 0 {
		a.log.Warn("JetStream acknowledgements not sent: the server redelivers these messages after ackWait",
			"messages", failed, "error", lastErr)
	}
}

// release ends the acks of a connection that is about to close: the fates queued are sent,
// and the messages still in flight are given back (negative acks), so that the next call or
// connection gets them at once instead of after ackWait. A fate that comes later finds its
// message released and is ignored: a delivered one may then be delivered again.
func (a *acks) release() {
	close(a.done)
	<-a.finished
	a.mu.Lock()
	settled := a.queued
	a.queued = nil
	for m := range a.inFlight {
		settled = append(settled, settlement{m, server.FateLost})
	}
	clear(a.inFlight)
	a.mu.Unlock()
	a.send(settled)
}
