package main

import (
	"log/slog"
	"slices"
	"testing"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/eventgate/eventgate/pkg/server"
)

// message is a received message as paho hands it over, which the queue acknowledges.
type message struct {
	paho.Message // the methods the queue does not call
	id           uint16
	qos          byte
	acks         *[]uint16
}

func (m message) Qos() byte         { return m.qos }
func (m message) MessageID() uint16 { return m.id }
func (m message) Topic() string     { return "t" }
func (m message) Ack()              { *m.acks = append(*m.acks, m.id) }

// The queue's decisions for fates that arrive in a given order; the broker-level tests
// (acked_test.go) show the same on the wire.
func TestAckQueue(t *testing.T) {
	const unknown server.Fate = 0
	tests := []struct {
		name       string
		persistent bool
		qos        []byte        // of messages 1, 2, ...
		fates      []server.Fate // in the order of the messages; unknown: none yet
		wantAcked  []uint16
		wantAgain  uint16 // the message to be redelivered; 0: none
	}{
		{name: "nothing before the head's fate", persistent: true, qos: []byte{1, 1, 1},
			fates: []server.Fate{unknown, server.FateDelivered, server.FateDropped}},
		{name: "the settled prefix, delivered or dropped", persistent: true, qos: []byte{1, 2, 1, 1},
			fates: []server.Fate{server.FateDelivered, server.FateDropped, unknown, server.FateDelivered}, wantAcked: []uint16{1, 2}},
		{name: "retry stops the queue for redelivery", persistent: true, qos: []byte{1, 1, 1},
			fates: []server.Fate{server.FateDelivered, server.FateRetry, server.FateDelivered}, wantAcked: []uint16{1}, wantAgain: 2},
		{name: "lost is a retry", persistent: true, qos: []byte{1, 1},
			fates: []server.Fate{server.FateLost, server.FateDelivered}, wantAgain: 1},
		{name: "a clean session gives up a retried message", qos: []byte{1, 1, 1},
			fates: []server.Fate{server.FateRetry, server.FateDelivered, server.FateLost}, wantAcked: []uint16{1, 2, 3}},
		{name: "QoS 0 has no acknowledgement", persistent: true, qos: []byte{0, 1},
			fates: []server.Fate{server.FateRetry, server.FateDelivered}, wantAcked: []uint16{2}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var acked []uint16
			q := newAckQueue(tc.persistent, slog.New(slog.DiscardHandler))
			var ds []*delivery
			for i, qos := range tc.qos {
				ds = append(ds, q.add(message{id: uint16(i + 1), qos: qos, acks: &acked}))
			}
			// Fates arrive last to first, so that the head's comes last.
			for i := len(ds) - 1; i >= 0; i-- {
				if tc.fates[i] != unknown {
					q.settle(ds[i], tc.fates[i])
				}
			}
			ack, again := q.take()
			for _, m := range ack {
				m.Ack()
			}
			if !slices.Equal(acked, tc.wantAcked) {
				t.Errorf("acknowledged %v, want %v", acked, tc.wantAcked)
			}
			switch {
			case again == nil && tc.wantAgain != 0:
				t.Errorf("no redelivery, want message %d's", tc.wantAgain)
			case again != nil && again.msg.MessageID() != tc.wantAgain:
				t.Errorf("redelivery of message %d, want %d (0: none)", again.msg.MessageID(), tc.wantAgain)
			}
		})
	}
}
