package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/eventgate/eventgate/pkg/config"
	"github.com/eventgate/eventgate/pkg/secret"
	"github.com/eventgate/eventgate/pkg/server"
)

// gatewayType names this gateway in logs, errors and CloudEvents.
const gatewayType = "mqtt"

const (
	connectTimeout = 10 * time.Second
	// keepAlive finds a silently dead connection within about keepAlive plus paho's ping
	// timeout (10s).
	keepAlive = 30 * time.Second
	// disconnectQuiesce is how long (ms) a clean disconnect waits for work in flight.
	disconnectQuiesce = 250
	// pendingMessages is how many received messages wait for emit. While they wait, paho
	// reads no more from the connection: a slow client slows the broker down instead of
	// filling memory (and past paho's keep-alive the connection is dropped, which for QoS
	// >= 1 with a persistent session means the broker sends the unacknowledged again).
	pendingMessages = 256
)

// gateway subscribes to MQTT topics.
type gateway struct {
	// secrets resolves the sources' secret references.
	secrets secret.Store
}

func (gateway) Type() string { return gatewayType }

func (g gateway) Parse(name, data string) (server.Source, error) {
	cfg, err := config.Parse[Config](gatewayType, data)
	if err != nil {
		return nil, err
	}
	id := string(cfg.ClientID)
	if id == "" {
		// MQTT 3.1.1 brokers must accept up to 23 characters: 10 + 13.
		id = "eventgate-" + rand.Text()[:13]
	}
	return &source{name: name, cfg: *cfg, clientID: id, secrets: g.secrets}, nil
}

// payload is the event body, in JSON:
//
//	{"topic": "sensors/kitchen/temp", "messageId": 17, "qos": 1, "retained": false, "body": "MjEuNQ=="}
//
// topic is the message's topic (the concrete one when the source subscribed with a
// wildcard); messageId is the MQTT packet identifier (0 at QoS 0; identifiers are reused,
// they do not identify a message for good); qos is the QoS it was delivered with;
// retained is true for a message the broker kept and sent on subscribing; duplicate is
// there, true, when the broker says it may have sent the message before. body is the
// message's bytes in base64, or the JSON body itself when the source sets jsonBody and the
// body is JSON (a non-JSON body still arrives, as base64).
type payload struct {
	Topic     string `json:"topic"`
	MessageID uint16 `json:"messageId"`
	QoS       byte   `json:"qos"`
	Retained  bool   `json:"retained"`
	Duplicate bool   `json:"duplicate,omitempty"`
	Body      any    `json:"body"`
}

// source is one subscription. With QoS 1 or 2 a message is acknowledged to the broker
// (PUBACK, or PUBREC for QoS 2) only once the client delivered it to every sensor or
// dropped it by policy (on a StartEventSource call, once it was handed over), in the order
// received. A message to be retried, or whose call ended before its acknowledgement, is
// not acknowledged: the source reconnects, and a broker that kept the session (cleanSession
// false, the default with a clientId) sends it again, with the messages after it: at least
// once, while the broker keeps the session. With a clean session or QoS 0 it is at most
// once: nothing is sent again, and messages published while the gateway is disconnected
// are not delivered.
type source struct {
	name     string
	cfg      Config
	clientID string // the same for every connection of the source, so the session resumes
	secrets  secret.Store
	// subscribed is true once the broker holds the subscription in a persistent session.
	// Only Start's goroutine uses it.
	subscribed bool
}

// Start subscribes, and after any loss of the connection, at any time, subscribes again
// after the configured backoff, until ctx ends or the event stream is gone.
func (s *source) Start(ctx context.Context, emit server.Emit) error {
	return server.Reconnect(ctx, s.cfg.Backoff, func(ctx context.Context, connected func()) error {
		return s.session(ctx, connected, emit)
	})
}

// session is one connection: it returns when the connection is lost (an error), a message
// must be redelivered (errRedeliver), the stream is gone (emit's error) or ctx ends.
func (s *source) session(ctx context.Context, connected func(), emit server.Emit) error {
	log := server.LoggerFrom(ctx)
	msgs := make(chan inbound, pendingMessages)
	lost := make(chan error, 1)
	done := make(chan struct{})
	opts, err := s.options(ctx)
	if err != nil {
		return err
	}
	acks := newAckQueue(!s.cfg.cleanSession(), log)
	// The handler is routed before connecting, not given to Subscribe: a resumed session's
	// queued messages may arrive before Subscribe returns, and a message without a handler
	// is neither delivered nor acknowledged. paho calls it in the order received, which
	// is the order the messages must be acknowledged in.
	handle := func(_ paho.Client, m paho.Message) {
		r := inbound{msg: m, ack: acks.add(m)}
		select {
		case msgs <- r:
		case <-done:
		}
	}
	// A kept session may also hold subscriptions of an earlier configuration of this
	// clientId (another topic): their messages are not this source's. Acknowledged, so the
	// broker does not send them again and again; the stale subscription stays until the
	// session is cleaned.
	opts.SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) {
		log.Warn("message from a subscription this source did not make: dropped", "topic", m.Topic(), "subscribedTo", s.cfg.Topic)
		acks.settle(acks.add(m), server.FateDropped)
	})
	opts.SetConnectionLostHandler(func(_ paho.Client, err error) {
		select {
		case lost <- err:
		default:
		}
	})
	client := paho.NewClient(opts)
	client.AddRoute(s.cfg.Topic, handle)
	connect := client.Connect()
	if err := wait(ctx, connect); err != nil {
		if ctx.Err() != nil {
			// The attempt goes on for at most connectTimeout: close what it may open.
			go func() {
				<-connect.Done()
				client.Disconnect(0)
			}()
		}
		return fmt.Errorf("connect to %s: %w", config.RedactURLs(s.cfg.URL), err)
	}
	// conn is the connection's life: the acker ends it (errRedeliver) when a message must
	// come again.
	conn, endConn := context.WithCancelCause(ctx)
	defer endConn(nil)
	stopAcks, acked := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(acked)
		acks.run(stopAcks, endConn)
	}()
	defer func() {
		close(done) // first: a handler waiting on msgs lets go, so Disconnect does not wait on it
		// The acker acknowledges what is settled before the disconnect (on a
		// StartEventSource call, every message handed over), for at most
		// disconnectQuiesce: an Ack held up by a stuck connection returns once Disconnect
		// closed it.
		close(stopAcks)
		flushed := time.NewTimer(disconnectQuiesce * time.Millisecond)
		select {
		case <-acked:
		case <-flushed.C:
		}
		flushed.Stop()
		client.Disconnect(disconnectQuiesce)
		<-acked
	}()
	present := connect.(*paho.ConnectToken).SessionPresent()
	// A resumed session's queued messages come before the broker's answer to Subscribe,
	// and while the handler waits on a full msgs paho reads nothing more: the messages are
	// emitted while the subscription is pending, or it never completes.
	subscribed := make(chan subscription, 1)
	if present && s.subscribed {
		// The broker kept the subscription with the session. Subscribing again is not only
		// useless: brokers that check a client's packet identifiers against the session's
		// unacknowledged messages (mochi) refuse it while those are queued.
		log.Info("resumed the session", "topic", s.cfg.Topic, "clientId", s.clientID)
		subscribed <- subscription{kept: true}
	} else {
		go func() { subscribed <- s.subscribe(conn, client, present) }()
	}

	for {
		select {
		case <-conn.Done():
			return stopped(ctx, conn)
		case err := <-lost:
			return fmt.Errorf("connection to the MQTT broker lost: %w", err)
		case sub := <-subscribed:
			if sub.err != nil {
				if conn.Err() != nil {
					return stopped(ctx, conn)
				}
				return sub.err
			}
			s.subscribed = sub.kept
			subscribed = nil
			connected()
		case r := <-msgs:
			m := r.msg
			ev, err := server.JSONEvent(payload{
				Topic: m.Topic(), MessageID: m.MessageID(), QoS: m.Qos(), Retained: m.Retained(), Duplicate: m.Duplicate(),
				Body: server.MessageBody(m.Payload(), s.cfg.JSONBody),
			})
			if err != nil {
				return err
			}
			// MQTT keeps order per topic: the client delivers each topic of a wildcard
			// subscription in order, different topics concurrently.
			ev.OrderingKey = m.Topic()
			ev.OnFate = func(f server.Fate) { acks.settle(r.ack, f) }
			if err := emit(conn, ev); err != nil {
				if conn.Err() != nil {
					return stopped(ctx, conn)
				}
				return err // not acknowledged: a persistent session gets it again
			}
		}
	}
}

// subscription is the outcome of a connection's Subscribe.
type subscription struct {
	// kept: the broker holds the subscription in a persistent session, and resumes it
	// with the session.
	kept bool
	err  error
}

// subscribe subscribes to the source's topic on a new connection, whose session the
// broker kept if present.
func (s *source) subscribe(conn context.Context, client paho.Client, present bool) subscription {
	log := server.LoggerFrom(conn)
	sub := client.Subscribe(s.cfg.Topic, s.cfg.qos(), nil)
	if err := wait(conn, sub); err != nil {
		return subscription{err: fmt.Errorf("subscribe to %q: %w", s.cfg.Topic, err)}
	}
	granted := sub.(*paho.SubscribeToken).Result()[s.cfg.Topic]
	switch {
	case granted <= 2:
		log.Info("subscribed", "topic", s.cfg.Topic, "qos", granted, "clientId", s.clientID, "sessionPresent", present)
		return subscription{kept: !s.cfg.cleanSession()}
	case present:
		// For the same reason, after a gateway restart: take what the kept session
		// delivers, and subscribe again at the next connection.
		log.Warn("the broker refused to renew the subscription of the session it kept: consuming that session's",
			"topic", s.cfg.Topic, "clientId", s.clientID, "returnCode", granted)
		return subscription{}
	default:
		return subscription{err: fmt.Errorf("subscribe to %q: the broker refused (return code %#x)", s.cfg.Topic, granted)}
	}
}

// inbound is a message as the handler hands it to the session, with its place in the
// acknowledgement queue (nil at QoS 0).
type inbound struct {
	msg paho.Message
	ack *delivery
}

// stopped is session's result once conn ended: nil when the source stops (ctx), or why the
// connection is given up (a message to be redelivered).
func stopped(ctx, conn context.Context) error {
	if ctx.Err() != nil {
		return nil
	}
	return context.Cause(conn)
}

// options builds the client options; TLS files and secrets are read per connection, so
// renewed certificates and rotated passwords are picked up at the next reconnect.
func (s *source) options(ctx context.Context) (*paho.ClientOptions, error) {
	opts := paho.NewClientOptions()
	for _, b := range s.cfg.brokers() {
		opts.AddBroker(b)
	}
	opts.SetClientID(s.clientID).
		SetCleanSession(s.cfg.cleanSession()).
		// Reconnects are server.Reconnect's, with the source's backoff, so that the first
		// connect and every later one follow the same policy and are logged alike.
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetConnectTimeout(connectTimeout).
		SetKeepAlive(keepAlive).
		// Messages reach the handler one by one in the order received, and are
		// acknowledged, in that order, only once their fate is known (ackQueue).
		SetOrderMatters(true).
		SetAutoAckDisabled(true)
	if s.cfg.Username != "" {
		password, err := secret.Value(ctx, s.secrets, "mqtt.passwordSecret", s.cfg.Password, s.cfg.PasswordSecret)
		if err != nil {
			return nil, err
		}
		opts.SetUsername(s.cfg.Username).SetPassword(password)
	}
	if s.cfg.TLS != nil {
		tlsConfig, err := s.cfg.TLS.Config()
		if err != nil {
			return nil, fmt.Errorf("mqtt.tls: %w", err)
		}
		opts.SetTLSConfig(tlsConfig)
	}
	return opts, nil
}

// wait waits for a paho token, or for ctx.
func wait(ctx context.Context, t paho.Token) error {
	select {
	case <-t.Done():
		return t.Error()
	case <-ctx.Done():
		return ctx.Err()
	}
}
