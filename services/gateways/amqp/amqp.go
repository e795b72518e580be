package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/eventgate/eventgate/pkg/config"
	"github.com/eventgate/eventgate/pkg/secret"
	"github.com/eventgate/eventgate/pkg/server"
	"github.com/eventgate/eventgate/pkg/tracing"
)

// gatewayType names this gateway in logs, errors and CloudEvents.
const gatewayType = "amqp"

// gateway consumes an AMQP 0-9-1 (RabbitMQ) queue bound to an exchange.
type gateway struct {
	// secrets resolves the sources' secret references.
	secrets secret.Store
}

func (gateway) Type() string { return gatewayType }

func (g gateway) Parse(_, data string) (server.Source, error) {
	cfg, err := config.Parse[Config](gatewayType, data)
	if err != nil {
		return nil, err
	}
	tc, err := cfg.TLS.Config()
	if err != nil {
		return nil, fmt.Errorf("amqp.tls: %w", err)
	}
	var queueArgs amqp.Table
	if q := cfg.QueueDeclare; q != nil {
		queueArgs, _, _ = q.Arguments.table() // valid: Parse validated it
	}
	return &source{cfg: *cfg, opts: cfg.settings(), queueArgs: queueArgs, secrets: g.secrets, dial: amqp.Config{
		TLSClientConfig: tc,
		Heartbeat:       10 * time.Second,
		Dial:            amqp.DefaultDial(10 * time.Second),
		Properties:      amqp.Table{"connection_name": "eventgate amqp gateway"},
	}}, nil
}

// payload is the event payload of one AMQP message, in JSON:
//
//	{"exchange": "orders", "routingKey": "order.created", "contentType": "application/json",
//	 "contentEncoding": "", "headers": {"x-trace": "abc"}, "messageId": "m-1",
//	 "correlationId": "", "replyTo": "", "type": "", "appId": "", "userId": "",
//	 "timestamp": "2026-01-02T15:04:05Z", "priority": 0, "deliveryMode": 2,
//	 "deliveryTag": 7, "redelivered": false, "body": ...}
//
// Empty properties are left out. timestamp, and a time in headers, is RFC 3339 for the
// years 0-9999 it can write; a later or earlier time, valid in AMQP, is written the same way
// with the year in full and signed, as ISO 8601 extends it ("+10000-01-01T00:00:00Z").
// A header float that JSON has no number for is the string "NaN", "+Inf" or "-Inf"
// (RabbitMQ refuses such a message, other brokers may not). body is the message body: the
// JSON itself when the source sets jsonBody and the body is JSON, otherwise the bytes in
// base64, so binary bodies arrive intact. headers are the message's header table as JSON (byte arrays as
// base64). redelivered is true for a message the broker sent before and got back
// unacknowledged: it may have reached the client already.
type payload struct {
	Exchange        string         `json:"exchange"`
	RoutingKey      string         `json:"routingKey"`
	ContentType     string         `json:"contentType,omitempty"`
	ContentEncoding string         `json:"contentEncoding,omitempty"`
	Headers         map[string]any `json:"headers,omitempty"`
	MessageID       string         `json:"messageId,omitempty"`
	CorrelationID   string         `json:"correlationId,omitempty"`
	ReplyTo         string         `json:"replyTo,omitempty"`
	Type            string         `json:"type,omitempty"`
	AppID           string         `json:"appId,omitempty"`
	UserID          string         `json:"userId,omitempty"`
	Timestamp       timestamp      `json:"timestamp,omitzero"`
	Priority        uint8          `json:"priority,omitempty"`
	DeliveryMode    uint8          `json:"deliveryMode,omitempty"`
	DeliveryTag     uint64         `json:"deliveryTag"`
	Redelivered     bool           `json:"redelivered,omitempty"`
	Body            any            `json:"body"`
}

type source struct {
	cfg  Config
	opts settings
	// queueArgs are queueDeclare.arguments as the declaration sends them.
	queueArgs amqp.Table
	dial      amqp.Config
	secrets   secret.Store
}

// dialConfig is the configuration of one connection: with a passwordSecret, the URL's user
// with the password read now (SASL PLAIN, as the library does with a URL's credentials),
// so that a secret created late is picked up by the next attempt and a rotated one by the
// next reconnect. The password never goes into a URL, which errors might show.
func (s *source) dialConfig(ctx context.Context) (amqp.Config, error) {
	dial := s.dial
	if s.cfg.PasswordSecret == nil {
		return dial, nil
	}
	password, err := secret.Value(ctx, s.secrets, "amqp.passwordSecret", "", s.cfg.PasswordSecret)
	if err != nil {
		return dial, err
	}
	uri, err := amqp.ParseURI(s.cfg.URL)
	if err != nil {
		return dial, fmt.Errorf("amqp.url: %w", err) // validated in Parse
	}
	dial.SASL = []amqp.Authentication{&amqp.PlainAuth{Username: uri.Username, Password: password}}
	return dial, nil
}

// stableAfter is how long a session that handed nothing over must last for the reconnect
// backoff to start over (see session).
const stableAfter = time.Second

// Start consumes until ctx ends, reconnecting per the backoff whenever the broker is lost.
// A declaration the broker refuses because the exchange or queue exists with other
// properties (see mismatchError) is tried again per the backoff too, as an operator may
// change the queue, but logged as the configuration problem it is (server.ErrRefused).
func (s *source) Start(ctx context.Context, emit server.Emit) error {
	return server.Reconnect(ctx, s.cfg.Backoff, func(ctx context.Context, connected func()) error {
		return s.session(ctx, emit, connected)
	})
}

// mismatchError is a declaration the broker refused with 406 PRECONDITION_FAILED: the
// exchange or queue exists with other properties or arguments (RabbitMQ: "inequivalent
// arg"), or they are not valid together. Its message names what was declared, carries the
// broker's reason and says what to change.
type mismatchError struct{ msg string }

func (e *mismatchError) Error() string { return e.msg }

func (e *mismatchError) Is(target error) bool { return target == server.ErrRefused }

// declareError is the error of declaring kind ("exchange", "queue") name, which the
// configuration's field options declares.
func declareError(kind, name, options string, err error) error {
	var aerr *amqp.Error
	if errors.As(err, &aerr) && aerr.Code == amqp.PreconditionFailed {
		return &mismatchError{fmt.Sprintf("declare %s %q: the broker refuses: %s; set %s to match the existing %s",
			kind, name, aerr.Reason, options, kind)}
	}
	return fmt.Errorf("declare %s %q: %w", kind, name, err)
}

// session is one connection: declare, bind, consume, and hand each message over. Without
// autoAck, a message is acknowledged once its fate is known (see acker): on a
// StreamEventSource call when the client acknowledged the event, on StartEventSource at
// hand-off. A message whose hand-off failed is requeued; what is unacknowledged when the
// connection drops is requeued by the broker. A message that cannot be made into an event
// is refused alone (see refuse): the session goes on.
//
// The backoff starts over (connected) once the session proved itself: a message handed
// over, or stableAfter without a failure. A session that fails as soon as it consumes, at
// every attempt, keeps backing off instead of reconnecting in a hot loop.
func (s *source) session(ctx context.Context, emit server.Emit, connected func()) error {
	log := server.LoggerFrom(ctx)
	dial, err := s.dialConfig(ctx)
	if err != nil {
		return err
	}
	conn, err := amqp.DialConfig(s.cfg.URL, dial)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", config.RedactURLs(s.cfg.URL), err)
	}
	defer conn.Close()
	connClosed := conn.NotifyClose(make(chan *amqp.Error, 1))
	ch, err := conn.Channel()
	if err != nil {
		return fmt.Errorf("open channel: %w", err)
	}
	queue, err := s.declare(ch)
	if err != nil {
		return err
	}
	o := s.opts
	deliveries, err := ch.ConsumeWithContext(ctx, queue, o.consumerTag, o.autoAck, o.consumeExclusive, false, false, nil)
	if err != nil {
		return fmt.Errorf("consume from queue %q: %w", queue, err)
	}
	chClosed := ch.NotifyClose(make(chan *amqp.Error, 1))

	var acks *acker
	var ackFailed <-chan struct{} // nil (never ready) with autoAck
	if !o.autoAck {
		acks = newAcker(ch, o.prefetch, log)
		ackFailed = acks.failed
		end, settled := make(chan struct{}), make(chan struct{})
		go func() {
			defer close(settled)
			acks.run(end)
		}()
		// Before conn.Close: the fates known by then are settled on the open channel.
		defer func() { close(end); <-settled }()
	}
	log.Info("consuming", "exchange", s.cfg.ExchangeName, "routingKey", s.cfg.RoutingKey, "queue", queue, "autoAck", o.autoAck, "prefetch", o.prefetch)
	stable := time.NewTimer(stableAfter)
	defer stable.Stop()
	proven := stable.C // nil once connected was called
	prove := func() {
		if proven != nil {
			proven = nil
			connected()
		}
	}
	for {
		select {
		case d, ok := <-deliveries:
			if !ok {
				return closedError(connClosed, chClosed)
			}
			ev, err := s.event(d)
			if err != nil {
				refuse(log, acks, d, err)
				continue
			}
			if err := s.send(ctx, emit, d, ev, acks); err != nil {
				if !o.autoAck {
					// Back to the queue for the next consumer or the next session.
					if nerr := d.Nack(false, true); nerr != nil {
						log.Warn("requeue failed: the broker requeues the message when the connection closes", "error", nerr)
					}
				}
				return err
			}
			prove()
		case <-proven:
			prove()
		case <-ackFailed:
			return acks.failure()
		case err := <-connClosed:
			return fmt.Errorf("connection closed: %w", errOrClosed(err))
		case err := <-chClosed:
			return fmt.Errorf("channel closed: %w", errOrClosed(err))
		case <-ctx.Done():
			return nil
		}
	}
}

// declare sets the channel's prefetch, declares the exchange and the queue and binds
// them, and returns the queue's name (the server's choice for an unnamed queue).
func (s *source) declare(ch *amqp.Channel) (string, error) {
	o := s.opts
	if !o.autoAck {
		// Qos bounds what the broker sends ahead of our acks: a slow client slows the
		// deliveries instead of filling memory. Auto-ack consumers ignore it.
		if err := ch.Qos(o.prefetch, 0, false); err != nil {
			return "", fmt.Errorf("set prefetch %d: %w", o.prefetch, err)
		}
	}
	// The broker predeclares amq.* exchanges and refuses to declare them.
	if !strings.HasPrefix(s.cfg.ExchangeName, "amq.") {
		err := ch.ExchangeDeclare(s.cfg.ExchangeName, s.cfg.ExchangeType, o.exchangeDurable, o.exchangeAutoDelete, o.exchangeInternal, false, nil)
		if err != nil {
			return "", declareError("exchange", s.cfg.ExchangeName, "exchangeType and exchangeDeclare", err)
		}
	}
	q, err := ch.QueueDeclare(o.queue, o.queueDurable, o.queueAutoDelete, o.queueExclusive, false, s.queueArgs)
	if err != nil {
		return "", declareError("queue", o.queue, "queueDeclare", err)
	}
	if err := ch.QueueBind(q.Name, s.cfg.RoutingKey, s.cfg.ExchangeName, false, nil); err != nil {
		return "", fmt.Errorf("bind queue %q to exchange %q with key %q: %w", q.Name, s.cfg.ExchangeName, s.cfg.RoutingKey, err)
	}
	return q.Name, nil
}

// event is the event of one delivery. Its error is the message's alone: every value a
// valid AMQP message holds is encoded (see payload).
func (s *source) event(d amqp.Delivery) (server.Event, error) {
	ev, err := server.JSONEvent(payload{
		Exchange: d.Exchange, RoutingKey: d.RoutingKey, ContentType: d.ContentType,
		ContentEncoding: d.ContentEncoding, Headers: headers(d.Headers), MessageID: d.MessageId,
		CorrelationID: d.CorrelationId, ReplyTo: d.ReplyTo, Type: d.Type, AppID: d.AppId,
		UserID: d.UserId, Timestamp: timestamp(d.Timestamp), Priority: d.Priority, DeliveryMode: d.DeliveryMode,
		DeliveryTag: d.DeliveryTag, Redelivered: d.Redelivered, Body: server.MessageBody(d.Body, s.cfg.JSONBody),
	})
	if err != nil {
		return ev, err
	}
	// A CloudEvent's time is RFC 3339: a timestamp beyond it leaves the time of receipt.
	if inRFC3339(d.Timestamp) {
		ev.Time = d.Timestamp
	}
	ev.Metadata = tracing.Carry(nil, headerString(d.Headers, tracing.TraceParent), headerString(d.Headers, tracing.TraceState))
	return ev, nil
}

// send emits the event of one delivery, whose fate goes to acks (nil with autoAck); the
// error is the stream's, and means it was not handed over.
func (s *source) send(ctx context.Context, emit server.Emit, d amqp.Delivery, ev server.Event, acks *acker) error {
	if acks != nil {
		ev.OnFate = acks.onFate(d.DeliveryTag)
	}
	if err := emit(ctx, ev); err != nil {
		return fmt.Errorf("emit message %d: %w", d.DeliveryTag, err)
	}
	return nil
}

// refuse gives up on a delivery that cannot be made into an event. It is rejected without
// requeue, so that the broker dead-letters it (to the queue's dead-letter exchange, if it
// has one) or drops it: requeued, it would come first again, for ever, and block the queue.
func refuse(log *slog.Logger, acks *acker, d amqp.Delivery, err error) {
	attrs := []any{"deliveryTag", d.DeliveryTag, "messageId", d.MessageId, "routingKey", d.RoutingKey, "error", err}
	if acks == nil {
		log.Error("message dropped: it cannot be made into an event (autoAck: the broker forgot it already)", attrs...)
		return
	}
	log.Error("message rejected: it cannot be made into an event (dead-lettered if the queue has a dead-letter exchange)", attrs...)
	acks.reject(d.DeliveryTag)
}

// headers makes an AMQP table JSON-friendly: nested tables become objects, decimals
// numbers, times and the floats JSON has no number for are written as payload says; the
// rest (strings, numbers, booleans, byte arrays) JSON encodes itself.
func headers(t amqp.Table) map[string]any {
	if len(t) == 0 {
		return nil
	}
	out := make(map[string]any, len(t))
	for k, v := range t {
		out[k] = headerValue(v)
	}
	return out
}

func headerValue(v any) any {
	switch v := v.(type) {
	case amqp.Table:
		return headers(v)
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = headerValue(e)
		}
		return out
	case amqp.Decimal:
		f := float64(v.Value)
		for range v.Scale {
			f /= 10
		}
		return f
	case time.Time:
		return timestamp(v)
	case float32:
		return float(float64(v))
	case float64:
		return float(v)
	default:
		return v
	}
}

// float is f, or for NaN and the infinities, which JSON has no number for, "NaN", "+Inf" or
// "-Inf".
func float(f float64) any {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return strconv.FormatFloat(f, 'g', -1, 64)
	}
	return f
}

// timestamp is an AMQP time in JSON (see payload). AMQP carries seconds since 1970 in 64
// bits; time.Time's own encoding fails outside of RFC 3339's years 0-9999, which would make
// the message impossible to deliver.
type timestamp time.Time

func (t timestamp) IsZero() bool { return time.Time(t).IsZero() }

func (t timestamp) MarshalJSON() ([]byte, error) {
	tt := time.Time(t)
	if !inRFC3339(tt) {
		tt = tt.UTC() // its year may be, even so
	}
	if inRFC3339(tt) {
		return tt.MarshalJSON()
	}
	s := tt.Format(time.RFC3339Nano) // the year in full, with a minus sign before 0
	if tt.Year() > 9999 {
		s = "+" + s
	}
	return strconv.AppendQuote(nil, s), nil
}

// inRFC3339 says whether RFC 3339 can write t: its year is 0-9999.
func inRFC3339(t time.Time) bool {
	y := t.Year()
	return y >= 0 && y <= 9999
}

var errClosed = errors.New("closed")

func errOrClosed(err *amqp.Error) error {
	if err == nil {
		return errClosed
	}
	return err
}

// closedError says why the deliveries stopped: the connection's or channel's close reason.
func closedError(conn, ch <-chan *amqp.Error) error {
	select {
	case err := <-conn:
		return fmt.Errorf("connection closed: %w", errOrClosed(err))
	case err := <-ch:
		return fmt.Errorf("channel closed: %w", errOrClosed(err))
	default:
		return errors.New("deliveries stopped (consumer cancelled by the broker?)")
	}
}
