package faults

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/eventgate/eventgate/pkg/testenv/mqttenv"
)

const (
	mqttTopic     = "faults"
	mqttGatewayID = "faults-gateway"
)

// mqttSystem: a QoS 1 source with a persistent session (a clientId, cleanSession false) on
// one topic, an ordered stream, through a broker that keeps its sessions on disk across a
// restart. A message is acknowledged upstream once the broker PUBACKed it to the
// publisher; the drain waits for the broker to hold nothing unacknowledged for the
// gateway's session.
func mqttSystem(t *testing.T, l *ledger) *system {
	broker := mqttenv.Start(t, mqttenv.WithStorage(t.TempDir()), mqttenv.WithMaxWritesPending(1<<16), mqttenv.WithMaxInflight(65535))
	// A message the broker PUBACKed and then dropped over its quota would count as lost:
	// the drain names them apart. A restart starts the count again.
	var droppedBefore atomic.Int64
	dropped := func() int64 {
		if srv := broker.Server(); srv != nil {
			return droppedBefore.Load() + atomic.LoadInt64(&srv.Info.InflightDropped)
		}
		return droppedBefore.Load()
	}
	pub := &mqttPublisher{url: broker.URL}
	t.Cleanup(pub.close)
	return &system{
		gatewayType: "mqtt",
		source: fmt.Sprintf("url: %s\ntopic: %s\nclientId: %s\ncleanSession: false\nqos: 1\njsonBody: true\nbackoff: {duration: 100ms, factor: 1}",
			broker.URL, mqttTopic, mqttGatewayID),
		ordered: true,
		streams: []string{"topic"},
		// Messages published before the session subscribed go nowhere.
		ready: func() error {
			if !broker.Subscribed(mqttTopic) {
				return errors.New("the gateway has not subscribed yet")
			}
			return nil
		},
		send: func(ctx context.Context, evs []mark) {
			retry(ctx, func() error {
				n, err := pub.publish(evs)
				l.ack(evs[:n]...)
				evs = evs[n:]
				return err
			})
		},
		brokerFault: "mochi stopped and started again on its port, sessions kept on disk (mqttenv.WithStorage)",
		restartBroker: func(t *testing.T, rng *rand.Rand) {
			droppedBefore.Store(dropped())
			broker.Stop()
			time.Sleep(between(rng, time.Second, 4*time.Second)) // the length of the outage
			broker.StartAgain()
		},
		drained: func() error {
			if n := dropped(); n > 0 {
				return fmt.Errorf("the broker dropped %d messages over its inflight quota", n)
			}
			if n := broker.Inflight(mqttGatewayID); n > 0 {
				return fmt.Errorf("%d messages unacknowledged in session %q", n, mqttGatewayID)
			}
			return nil
		},
	}
}

// mqttPublisher publishes at QoS 1: a PUBACK is the broker's acknowledgement.
type mqttPublisher struct {
	url    string
	client paho.Client // nil: connect first
}

// publish sends evs and returns how many of them, from the first, the broker PUBACKed.
// After a failure the connection is dropped with whatever it still queued, and the next
// call connects afresh: a client that reconnects by itself would send what it queued
// meanwhile ahead of the events retried, out of order.
func (p *mqttPublisher) publish(evs []mark) (int, error) {
	if p.client == nil {
		c := paho.NewClient(paho.NewClientOptions().AddBroker(p.url).SetClientID("faults-publisher").
			SetCleanSession(true).SetOrderMatters(true).SetAutoReconnect(false).SetConnectTimeout(2 * time.Second))
		if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			c.Disconnect(0)
			return 0, fmt.Errorf("connect the MQTT publisher: %v", tok.Error())
		}
		p.client = c
	}
	toks := make([]paho.Token, len(evs))
	for i, m := range evs {
		toks[i] = p.client.Publish(mqttTopic, 1, false, m.body())
	}
	for i, tok := range toks {
		err := errors.New("no PUBACK within 10s")
		if tok.WaitTimeout(10 * time.Second) {
			err = tok.Error()
		}
		if err != nil {
			p.close()
			return i, fmt.Errorf("publish %s: %w", evs[i], err)
		}
	}
	return len(evs), nil
}

func (p *mqttPublisher) close() {
	if p.client != nil {
		p.client.Disconnect(0)
		p.client = nil
	}
}
