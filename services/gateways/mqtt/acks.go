package main

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/eventgate/eventgate/pkg/server"
)

// ackQueue acknowledges one connection's QoS 1 and 2 messages to the broker (PUBACK,
// PUBREC) once their fate is known, in the order they were received, as MQTT 3.1.1
// (4.6) asks, although fates arrive in any order: a message is acknowledged once it and
// every message received before it have been delivered or dropped.
//
// MQTT has no negative acknowledgement. A message to be retried (or whose call ended
// first) is sent again only by a broker that kept the session, at the next connection; so
// with a persistent session the queue stops there, acknowledges nothing more and asks for
// a reconnect. With a clean session there is nothing to come back to: the message is
// acknowledged anyway, so that those behind it are not held, and is lost.
type ackQueue struct {
	// persistent: the broker keeps the session, and redelivers what is not acknowledged.
	persistent bool
	log        *slog.Logger

	mu sync.Mutex
	// pending are the messages not yet acknowledged, in the order received.
	pending []*delivery
	// woken says a fate came in; one token is enough, the acker takes every fate there is.
	woken chan struct{}
}

// delivery is one received message waiting for its fate.
type delivery struct {
	msg  paho.Message
	fate server.Fate // 0 until known; guarded by ackQueue.mu
}

func newAckQueue(persistent bool, log *slog.Logger) *ackQueue {
	return &ackQueue{persistent: persistent, log: log, woken: make(chan struct{}, 1)}
}

// add queues m in receipt order; it must be called in the order paho received the
// messages. QoS 0 messages have no acknowledgement: add returns nil for them.
func (q *ackQueue) add(m paho.Message) *delivery {
	if m.Qos() == 0 {
		return nil
	}
	d := &delivery{msg: m}
	q.mu.Lock()
	q.pending = append(q.pending, d)
	q.mu.Unlock()
	return d
}

// settle records d's fate. It never blocks: it runs on the framework's goroutine.
func (q *ackQueue) settle(d *delivery, f server.Fate) {
	if d == nil {
		return
	}
	q.mu.Lock()
	d.fate = f
	q.mu.Unlock()
	select {
	case q.woken <- struct{}{}:
	default:
	}
}

// take removes the messages at the head of the queue that may be acknowledged now, and
// returns them in order, with the first message to be redelivered when that is what
// stops the queue.
func (q *ackQueue) take() (ack []paho.Message, redeliver *delivery) {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := 0
	for _, d := range q.pending {
		if d.fate == 0 {
			break
		}
		if d.fate == server.FateRetry || d.fate == server.FateLost {
			if q.persistent {
				redeliver = d
				break
			}
			q.log.Warn("message not delivered, and a clean session cannot have it sent again: lost",
				"fate", d.fate, "topic", d.msg.Topic(), "messageId", d.msg.MessageID())
		}
		ack = append(ack, d.msg)
		n++
	}
	clear(q.pending[:n]) // let the acknowledged messages go
	q.pending = q.pending[n:]
	return ack, redeliver
}

// run acknowledges messages as their fates come in, until stop is closed (it then
// acknowledges what is settled, once more) or a message must be redelivered: it then calls
// redeliver with the reason and acknowledges no more on this connection, so that the
// broker sends that message (and those after it) again when the session resumes.
func (q *ackQueue) run(stop <-chan struct{}, redeliver func(error)) {
	for stopping := false; !stopping; {
		select {
		case <-q.woken:
		case <-stop:
			stopping = true
		}
		ack, again := q.take()
		// paho passes acknowledgements to the connection through one unbuffered chain of
		// goroutines: the order of the Ack calls is the order on the wire.
		for _, m := range ack {
			m.Ack()
		}
		if again != nil {
			redeliver(fmt.Errorf("%w: message %d on %q: %s", errRedeliver, again.msg.MessageID(), again.msg.Topic(), again.fate))
			return
		}
	}
}

// errRedeliver ends a connection so that the broker sends the unacknowledged messages
// again.
var errRedeliver = errors.New("reconnecting so that the broker sends the unacknowledged messages again")
