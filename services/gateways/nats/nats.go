package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/eventgate/eventgate/pkg/config"
	"github.com/eventgate/eventgate/pkg/secret"
	"github.com/eventgate/eventgate/pkg/server"
)

// gatewayType names this gateway in logs, errors and CloudEvents.
const gatewayType = "nats"

// Bounds of the messages a source holds while its client does not read. Core NATS has no
// flow control back to publishers: when emit blocks (the gRPC client is slow), messages
// wait here, and beyond these bounds the client library drops them, counted and logged.
// The byte bound keeps a burst of large messages from exhausting memory.
const (
	defaultPendingMsgs  = 65536
	defaultPendingBytes = 64 << 20
)

const (
	connectTimeout = 5 * time.Second
	// pingInterval finds a silently dead connection (no RST from a vanished broker) within
	// about two pings, instead of the library's default of minutes.
	pingInterval = 20 * time.Second
	// dropCheckInterval is how often a subscription's drops are counted and logged: at most
	// one log per interval, however many messages an overloaded source drops.
	dropCheckInterval = time.Second
)

// gateway subscribes to NATS subjects. The zero value is not usable: see newGateway.
type gateway struct {
	pendingMsgs, pendingBytes int
	// subscribed, when set, is told each new subscription: tests read its drop count.
	subscribed func(*nats.Subscription)
	// secrets resolves the sources' secret references.
	secrets secret.Store
	// consumerLocks serialize the look-up and update of a JetStream consumer by the sources
	// that share it (see source.consumer); shared by every copy of the gateway.
	consumerLocks *keyedLocks
}

func newGateway() gateway {
	return gateway{pendingMsgs: defaultPendingMsgs, pendingBytes: defaultPendingBytes, consumerLocks: newKeyedLocks()}
}

func (g gateway) Type() string { return gatewayType }

func (g gateway) Parse(name, data string) (server.Source, error) {
	cfg, err := config.Parse[Config](gatewayType, data)
	if err != nil {
		return nil, err
	}
	return &source{name: name, cfg: *cfg, gw: g}, nil
}

// payload is the event body, in JSON:
//
//	{"subject": "orders.created", "header": {"Trace-Id": ["7f3a"]}, "body": "aGVsbG8="}
//
// subject is the message's subject (the concrete one when the source subscribed with a
// wildcard); header holds the NATS headers, and is absent when the message has none; body is
// the message's bytes in base64, or the JSON body itself when the source sets jsonBody and
// the body is JSON (a non-JSON body still arrives, as base64). A JetStream source adds
// jetStream (see jetStreamInfo).
type payload struct {
	Subject   string              `json:"subject"`
	Header    map[string][]string `json:"header,omitempty"`
	Body      any                 `json:"body"`
	JetStream *jetStreamInfo      `json:"jetStream,omitempty"`
}

// source is one subscription or JetStream consumer. Core NATS delivers at most once:
// messages published while the gateway is disconnected (a broker restart, a network
// failure, the reconnect wait) are not delivered, nor are those the library had buffered
// when the connection broke or dropped because the client was too slow. Use JetStream
// where every message counts: see jetStreamSession.
type source struct {
	name string
	cfg  Config
	gw   gateway
}

// Start subscribes (or consumes from JetStream), and after any loss of the connection, at
// any time, does so again after the configured backoff, until ctx ends or the event stream
// is gone.
func (s *source) Start(ctx context.Context, emit server.Emit) error {
	session := s.session
	if s.cfg.JetStream != nil {
		session = s.jetStreamSession
	}
	return server.Reconnect(ctx, s.cfg.Backoff, func(ctx context.Context, connected func()) error {
		return session(ctx, connected, emit)
	})
}

// connect opens one connection to the server.
func (s *source) connect(ctx context.Context) (*nats.Conn, error) {
	opts, err := s.options(ctx)
	if err != nil {
		return nil, err
	}
	nc, err := nats.Connect(s.cfg.URL, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to NATS: %w", err)
	}
	return nc, nil
}

// session is one connection subscribed with core NATS: it returns when the connection is
// lost (an error), the stream is gone (emit's error) or ctx ends.
func (s *source) session(ctx context.Context, connected func(), emit server.Emit) error {
	log := server.LoggerFrom(ctx)
	nc, err := s.connect(ctx)
	if err != nil {
		return err
	}
	defer nc.Close()
	sub, err := nc.SubscribeSync(s.cfg.Subject)
	if err != nil {
		return fmt.Errorf("subscribe to %q: %w", s.cfg.Subject, err)
	}
	if err := sub.SetPendingLimits(s.gw.pendingMsgs, s.gw.pendingBytes); err != nil {
		return fmt.Errorf("subscribe to %q: %w", s.cfg.Subject, err)
	}
	// The server has the subscription once it answered a ping sent after it: from then on,
	// what is published to the subject reaches this source.
	if err := nc.FlushTimeout(connectTimeout); err != nil {
		return fmt.Errorf("subscribe to %q: %w", s.cfg.Subject, err)
	}
	log.Info("subscribed", "server", nc.ConnectedUrlRedacted(), "subject", s.cfg.Subject)
	if s.gw.subscribed != nil {
		s.gw.subscribed(sub)
	}
	connected()
	stopDrops := watchDrops(sub, log)
	defer stopDrops()

	for {
		msg, err := sub.NextMsgWithContext(ctx)
		switch {
		case err == nil:
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, nats.ErrSlowConsumer): // counted by watchDrops
			continue
		default:
			if cause := nc.LastError(); cause != nil && !errors.Is(err, cause) {
				err = fmt.Errorf("%w (%w)", err, cause)
			}
			return fmt.Errorf("connection to NATS lost: %w", err)
		}
		ev, err := server.JSONEvent(payload{Subject: msg.Subject, Header: msg.Header, Body: server.MessageBody(msg.Data, s.cfg.JSONBody)})
		if err != nil {
			return err
		}
		ev.Metadata = traceContext(nil, msg.Header)
		if err := emit(ctx, ev); err != nil {
			return err
		}
	}
}

// watchDrops logs the messages sub drops, every dropCheckInterval while they are dropped and
// once more when the returned stop is called (before the connection closes, which takes the
// count with it). The library reports ErrSlowConsumer only for some drops (once per
// episode, and not at all when a message got queued in between), and a source blocked on
// a slow client reads nothing: its counter, read on a clock, sees them all.
func watchDrops(sub *nats.Subscription, log *slog.Logger) (stop func()) {
	var seen int // the drops logged so far; the watcher's, then stop's
	report := func() {
		total, err := sub.Dropped()
		if err != nil || total == seen {
			return
		}
		log.Warn("client too slow: NATS messages dropped", "dropped", total-seen, "droppedSinceConnect", total)
		seen = total
	}
	end, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(dropCheckInterval)
		defer tick.Stop()
		for {
			select {
			case <-tick.C:
				report()
			case <-end:
				return
			}
		}
	}()
	return func() {
		close(end)
		<-done
		report()
	}
}

// options builds the connection options; TLS files and secrets are read per connection, so
// renewed certificates and rotated credentials are picked up at the next reconnect.
func (s *source) options(ctx context.Context) ([]nats.Option, error) {
	log := server.LoggerFrom(ctx)
	opts := []nats.Option{
		nats.Name("eventgate " + gatewayType + " gateway: " + s.name),
		// Reconnects are server.Reconnect's, with the source's backoff, so that the first
		// connect and every later one follow the same policy and are logged alike.
		nats.NoReconnect(),
		nats.Timeout(connectTimeout),
		nats.PingInterval(pingInterval),
		nats.PermissionErrOnSubscribe(true),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			if !errors.Is(err, nats.ErrSlowConsumer) { // counted by watchDrops
				log.Warn("NATS error", "error", err)
			}
		}),
	}
	if s.cfg.TLS != nil {
		tlsConfig, err := s.cfg.TLS.Config()
		if err != nil {
			return nil, fmt.Errorf("nats.tls: %w", err)
		}
		opts = append(opts, nats.Secure(tlsConfig))
	}
	switch {
	case s.cfg.Token != "" || s.cfg.TokenSecret != nil:
		token, err := secret.Value(ctx, s.gw.secrets, "nats.tokenSecret", s.cfg.Token, s.cfg.TokenSecret)
		if err != nil {
			return nil, err
		}
		opts = append(opts, nats.Token(token))
	case s.cfg.Username != "":
		password, err := secret.Value(ctx, s.gw.secrets, "nats.passwordSecret", s.cfg.Password, s.cfg.PasswordSecret)
		if err != nil {
			return nil, err
		}
		opts = append(opts, nats.UserInfo(s.cfg.Username, password))
	}
	return opts, nil
}
