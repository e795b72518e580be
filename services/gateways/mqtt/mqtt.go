package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"sync"
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

// gateway subscribes to MQTT topics. Its zero value is ready to use; it is one value for
// all the sources of the process, which share its register of client identifiers.
type gateway struct {
	// secrets resolves the sources' secret references.
	secrets secret.Store

	// mu guards clientIDs: the client identifiers of the sources started and not yet
	// stopped (claimClientID).
	mu        sync.Mutex
	clientIDs map[string]*clientIDClaim
}

func (*gateway) Type() string { return gatewayType }

func (g *gateway) Parse(name, data string) (server.Source, error) {
	cfg, err := config.Parse[Config](gatewayType, data)
	if err != nil {
		return nil, err
	}
	id := string(cfg.ClientID)
	if id == "" {
		// MQTT 3.1.1 brokers must accept up to 23 characters: 10 + 13.
		id = "eventgate-" + rand.Text()[:13]
	}
	return &source{name: name, cfg: *cfg, clientID: id, secrets: g.secrets, gw: g}, nil
}

// clientIDGrace is how long a source waits for the running source that uses its client
// identifier to stop before it gives up. The gateway-client restarts a source (a changed
// configuration, a renamed source) by cancelling its call and starting the new one at
// once, and the cancellation may reach the server after the new call.
const clientIDGrace = time.Second

// clientIDClaim is a client identifier in use by one source of the gateway.
type clientIDClaim struct {
	gw     *gateway
	id     string
	source string // the event source's name, for the error of another that wants the id
	// stopping is the holder's Start context's Done: once it is closed the holder only
	// disconnects, which takes at most about disconnectQuiesce, or connectTimeout for a
	// connect attempt it left behind.
	stopping <-chan struct{}
	// refs, under gw.mu, counts the holders: the source's Start, and a connect attempt it
	// left behind. The id is free once it is 0.
	refs int
	free chan struct{} // closed once the id is free
}

// claimClientID reserves id for the source name until the claim is released. Two
// connections with one client identifier are one session to the broker, which hands it to
// whichever connected last and sends it the messages of both sources' subscriptions: each
// source would take, and drop, messages of the other's. So a source whose id another source of this
// gateway uses does not start: the error names both, the first source keeps running, and
// the client starts the second again later. A holder that is stopping is waited for, as is,
// for up to clientIDGrace, one that is running. The result is nil, nil when ctx ends first.
//
// A made-up id (no clientId configured) is claimed too: it is random, so never refused.
// Sources in other processes (another gateway, another replica) are beyond reach: the broker
// keeps taking the session from one to the other, which their logs show as lost
// connections.
func (g *gateway) claimClientID(ctx context.Context, id, name string) (*clientIDClaim, error) {
	grace := time.NewTimer(clientIDGrace)
	defer grace.Stop()
	graceOver := false
	for {
		g.mu.Lock()
		held := g.clientIDs[id]
		if held == nil {
			if g.clientIDs == nil {
				g.clientIDs = map[string]*clientIDClaim{}
			}
			c := &clientIDClaim{gw: g, id: id, source: name, stopping: ctx.Done(), refs: 1, free: make(chan struct{})}
			g.clientIDs[id] = c
			g.mu.Unlock()
			return c, nil
		}
		g.mu.Unlock()
		if !graceOver {
			select {
			case <-held.free:
				continue
			case <-ctx.Done():
				return nil, nil
			case <-held.stopping:
			case <-grace.C:
				graceOver = true
			}
		}
		select {
		case <-held.stopping:
		default:
			other := fmt.Sprintf("event source %q", held.source)
			if held.source == name {
				other = fmt.Sprintf("another running call of event source %q", name)
			}
			return nil, fmt.Errorf("mqtt.clientId: %q is in use by %s on this gateway: two connections with one client ID share one broker session, "+
				"and each would take the other's messages; give each event source its own clientId", id, other)
		}
		select {
		case <-held.free:
		case <-ctx.Done():
			return nil, nil
		}
	}
}

// hold adds a holder to a claim that has one.
func (c *clientIDClaim) hold() {
	c.gw.mu.Lock()
	c.refs++
	c.gw.mu.Unlock()
}

// release removes a holder; the last one frees the id.
func (c *clientIDClaim) release() {
	c.gw.mu.Lock()
	defer c.gw.mu.Unlock()
	if c.refs--; c.refs == 0 {
		delete(c.gw.clientIDs, c.id)
		close(c.free)
	}
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
	gw       *gateway // holds the register of client IDs in use
	// claim is the source's hold on its client ID while it runs, and subscribed is true
	// once the broker holds the subscription in a persistent session. Only Start's
	// goroutine uses them.
	claim      *clientIDClaim
	subscribed bool
}

// Start subscribes, and after any loss of the connection, at any time, subscribes again
// after the configured backoff, until ctx ends or the event stream is gone. It fails,
// within clientIDGrace, while another source of the gateway runs with its client ID
// (claimClientID).
func (s *source) Start(ctx context.Context, emit server.Emit) error {
	claim, err := s.gw.claimClientID(ctx, s.clientID, s.name)
	if claim == nil {
		return err // nil when ctx ended
	}
	defer claim.release()
	s.claim = claim
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
	// A message of no route: a subscription this source did not make. No other source of
	// the gateway shares the session (claimClientID: one source per client ID), so it
	// comes from a subscription that an earlier configuration of this clientId (another
	// topic) left in the session the broker kept, and no running source wants it. It is
	// acknowledged (settled dropped, in its turn: the messages after it are acknowledged
	// only in order), so the broker does not send it again and again; the stale
	// subscription stays until the session is cleaned. This is safe only because client
	// IDs are unique: two sources of one client ID shared one session, and each dropped
	// here the messages the broker routed to it for the other.
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
			// The attempt goes on for at most connectTimeout: close what it may open. It
			// keeps the client ID until then, so that a source starting with it next does
			// not meet this connection at the broker.
			claim := s.claim
			claim.hold()
			go func() {
				defer claim.release()
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
