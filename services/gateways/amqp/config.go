package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/eventgate/eventgate/pkg/config"
	"github.com/eventgate/eventgate/pkg/server"
)

// Config is one AMQP event source: every Argo Events v0.10 field (url, exchangeName,
// exchangeType, routingKey, backoff), plus jsonBody, TLS and the exchange, queue and
// consume options of Argo Events v1.
type Config struct {
	// URL is the broker, amqp://user:password@host:5672/vhost (amqps:// for TLS); the
	// credentials go in the URL, or the user alone with PasswordSecret.
	URL string `json:"url"`
	// PasswordSecret reads the password of the URL's user from a Secret ({name, key}), at
	// each connect; the URL then names the user and no password (amqp://user@host/).
	PasswordSecret *config.SecretRef `json:"passwordSecret,omitempty"`
	// ExchangeName is the exchange the source's queue is bound to; it is declared if missing.
	ExchangeName string `json:"exchangeName"`
	// ExchangeType is direct, fanout, topic or headers.
	ExchangeType string `json:"exchangeType"`
	// RoutingKey binds the queue to the exchange (a pattern for topic exchanges).
	RoutingKey string `json:"routingKey,omitempty"`
	// Backoff spaces the reconnects, for the life of the source (v0.10: first connect only).
	Backoff config.Backoff `json:"backoff,omitempty"`
	// JSONBody puts a JSON message body into the event as JSON rather than as base64 bytes.
	JSONBody bool `json:"jsonBody,omitempty"`
	// TLS configures the TLS connection of an amqps:// URL (CA, client certificate); with
	// an amqp:// URL, which is dialled without TLS, it is an error.
	TLS *config.TLS `json:"tls,omitempty"`
	// ExchangeDeclare, QueueDeclare and Consume default to what v0.10 did, except that
	// messages are acknowledged only once their fate is known (autoAck false).
	ExchangeDeclare *ExchangeDeclare `json:"exchangeDeclare,omitempty"`
	QueueDeclare    *QueueDeclare    `json:"queueDeclare,omitempty"`
	Consume         *Consume         `json:"consume,omitempty"`
}

// ExchangeDeclare are the options of the exchange declaration.
type ExchangeDeclare struct {
	// Durable exchanges survive a broker restart (default true, as in v0.10).
	Durable    *bool `json:"durable,omitempty"`
	AutoDelete bool  `json:"autoDelete,omitempty"`
	Internal   bool  `json:"internal,omitempty"`
}

// QueueDeclare are the options of the source's queue. The default, v0.10's, is a
// server-named exclusive queue: it lives as long as the connection, which lasts as long as
// the client's call, so neither the messages published while the source is disconnected
// nor those unacknowledged when the call or the connection ends are kept for it. To lose
// nothing across client, gateway and broker restarts, name a durable, non-exclusive queue.
type QueueDeclare struct {
	Name       string `json:"name,omitempty"`
	Durable    bool   `json:"durable,omitempty"`
	AutoDelete bool   `json:"autoDelete,omitempty"`
	// Exclusive defaults to true for a server-named queue and false for a named one.
	Exclusive *bool `json:"exclusive,omitempty"`
	// Arguments are the queue's x-arguments, as in Argo Events v1 (queueDeclare.arguments):
	// {x-queue-type: quorum, x-dead-letter-exchange: dlx, x-message-ttl: 60000}. A queue
	// that exists already is declared with the arguments it has, or the broker refuses the
	// declaration (PRECONDITION_FAILED) and the source cannot consume.
	Arguments Arguments `json:"arguments,omitempty"`
}

// Arguments are a declaration's x-arguments: names to strings, numbers, booleans, lists and
// maps, written as a YAML map. Argo Events v1 has a string holding a JSON object instead
// (arguments: '{"x-queue-type": "quorum"}'), which a YAML user would not expect to write;
// that string is read too, so that Argo's configurations keep working. Whole numbers go to
// the broker as integers (RabbitMQ refuses x-max-length or x-message-ttl as a float).
type Arguments map[string]any

func (a *Arguments) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	argo := len(data) > 0 && data[0] == '"'
	if argo {
		var s string
		if err := json.Unmarshal(data, &s); err != nil {
			return err
		}
		if strings.TrimSpace(s) == "" {
			*a = nil
			return nil
		}
		data = []byte(s)
	}
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber() // integers stay integers (see table)
	var m map[string]any
	err := d.Decode(&m)
	if err == nil && d.More() {
		err = errors.New("text after the JSON object")
	}
	if err != nil {
		if argo {
			return fmt.Errorf("arguments: a string must hold a JSON object (Argo Events v1's form): %v", err)
		}
		return fmt.Errorf("arguments: must be a map of x-arguments, e.g. {x-queue-type: quorum}: %v", err)
	}
	*a = m
	return nil
}

// table is a as the AMQP table the declaration sends, or the first value that cannot be
// one, with its argument's name.
func (a Arguments) table() (amqp.Table, string, error) {
	if len(a) == 0 {
		return nil, "", nil
	}
	t := make(amqp.Table, len(a))
	for _, k := range slices.Sorted(maps.Keys(a)) {
		v, err := argValue(a[k])
		if err == nil {
			// The library's own check of what it can encode, on this argument alone; its
			// "table field NAME" goes, as the error's path names the argument.
			if verr := (amqp.Table{k: v}).Validate(); verr != nil {
				err = errors.New(strings.TrimPrefix(verr.Error(), fmt.Sprintf("table field %q ", k)))
			}
		}
		if err == nil && len(k) > 255 {
			err = fmt.Errorf("name is %d bytes, AMQP allows 255", len(k))
		}
		if err != nil {
			return nil, k, err
		}
		t[k] = v
	}
	return t, "", nil
}

// argValue is the AMQP value of a decoded JSON value: an integer as int64, another number
// as float64, a map as a table.
func argValue(v any) (any, error) {
	switch v := v.(type) {
	case json.Number:
		if i, err := v.Int64(); err == nil {
			return i, nil
		}
		if !strings.ContainsAny(v.String(), ".eE") {
			return nil, fmt.Errorf("integer %s is out of range (64 bits)", v)
		}
		f, err := v.Float64()
		if err != nil {
			return nil, fmt.Errorf("number %s is out of range", v)
		}
		return f, nil
	case map[string]any:
		t := make(amqp.Table, len(v))
		for k, e := range v {
			if len(k) > 255 {
				return nil, fmt.Errorf("key %.20q... is %d bytes, AMQP allows 255", k, len(k))
			}
			ev, err := argValue(e)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			t[k] = ev
		}
		return t, nil
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			ev, err := argValue(e)
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			out[i] = ev
		}
		return out, nil
	default: // string, bool, nil (a void field); the rest Validate refuses
		return v, nil
	}
}

func (q *QueueDeclare) validate(errs *config.Errors) {
	if strings.HasPrefix(q.Name, "amq.") {
		errs.Addf("amqp.queueDeclare.name", "%q is reserved by the broker (amq.*)", q.Name)
	}
	// Each connection declares a new server-named queue: one that is neither exclusive
	// nor auto-deleted outlives it, bound to the exchange, with no consumer, and collects
	// its messages for ever.
	if q.Name == "" && q.Exclusive != nil && !*q.Exclusive && !q.AutoDelete {
		errs.Addf("amqp.queueDeclare.name", "is required with exclusive: false (unless autoDelete: true): "+
			"each connection would leave a server-named queue behind, collecting messages for ever; "+
			"for at least once, name a durable queue (queueDeclare: {name: NAME, durable: true})")
	}
	if _, key, err := q.Arguments.table(); err != nil {
		errs.Addf("amqp.queueDeclare.arguments."+key, "%v", err)
	}
	// RabbitMQ's replicated queue types refuse any other declaration, with a
	// PRECONDITION_FAILED that would only show once connected.
	if typ, _ := q.Arguments["x-queue-type"].(string); typ == "quorum" || typ == "stream" {
		exclusive := q.Name == ""
		if q.Exclusive != nil {
			exclusive = *q.Exclusive
		}
		if q.Name == "" || !q.Durable || exclusive || q.AutoDelete {
			errs.Addf("amqp.queueDeclare", "a %s queue must be named, durable, not exclusive and not autoDelete: "+
				"queueDeclare: {name: NAME, durable: true, arguments: {x-queue-type: %s}}", typ, typ)
		}
	}
}

// Consume are the options of the consumer.
type Consume struct {
	ConsumerTag string `json:"consumerTag,omitempty"`
	// AutoAck lets the broker forget a message as soon as it sent it: at most once, a
	// message on its way when the gateway, the client or a sensor fails is lost. The
	// default, false, acknowledges a message only once its fate is known: when the client
	// acknowledged the event (every sensor took it, or it was dropped by policy), or at
	// hand-off for a client that does not acknowledge (StartEventSource). A message to be
	// retried, or whose call ended first, goes back to the queue: at least once.
	AutoAck   bool `json:"autoAck,omitempty"`
	Exclusive bool `json:"exclusive,omitempty"`
	// Prefetch is how many unacknowledged messages the broker sends ahead (default 256).
	// As messages are acknowledged once the client acknowledged them, it is also the most
	// messages on their way from the broker to the sensors: the throughput is at most
	// prefetch per round trip (broker to sensor, and the acknowledgement back).
	Prefetch int `json:"prefetch,omitempty"`
}

// DefaultPrefetch is Consume.Prefetch's default: the window of unacknowledged events a
// client gets by default, which a smaller prefetch would leave partly unused (the broker
// would stop sending while the client could take more), and little enough to redeliver
// quickly after a failure. Measured through the gateway-client, 256 kept the acknowledged
// path busier than 100 under load, and cost less CPU per event.
const DefaultPrefetch = server.DefaultWindow

var exchangeTypes = []string{amqp.ExchangeDirect, amqp.ExchangeFanout, amqp.ExchangeTopic, amqp.ExchangeHeaders}

// Validate reports every problem of c with its field path.
func (c *Config) Validate() error {
	var errs config.Errors
	scheme := "" // the URL's, once it is a valid one
	if strings.TrimSpace(c.URL) == "" {
		errs.Addf("amqp.url", "is required, e.g. amqp://guest:guest@rabbitmq.argo-events:5672/")
	} else if uri, err := amqp.ParseURI(c.URL); err != nil {
		errs.Addf("amqp.url", "%q is not an AMQP URL: %v", config.RedactURLs(c.URL), err)
	} else {
		scheme = uri.Scheme
	}
	if scheme != "" && c.PasswordSecret != nil {
		u, _ := url.Parse(c.URL) // ParseURI parsed it
		_, hasPassword := u.User.Password()
		config.CheckCredential(&errs, "amqp.url's password", hasPassword, "amqp.passwordSecret", c.PasswordSecret)
		if u.User.Username() == "" {
			errs.Addf("amqp.url", "needs the user with passwordSecret: amqp://USER@%s", u.Host)
		}
	}
	if c.ExchangeName == "" {
		errs.Addf("amqp.exchangeName", "is required")
	}
	if !contains(exchangeTypes, c.ExchangeType) {
		errs.Addf("amqp.exchangeType", "must be one of %s, got %q", strings.Join(exchangeTypes, ", "), c.ExchangeType)
	}
	c.Backoff.Validate(&errs, "amqp.backoff")
	c.TLS.Validate(&errs, "amqp.tls")
	if c.TLS != nil && scheme == "amqp" {
		// amqp091 dials an amqp:// URL without TLS, whatever the TLS configuration.
		errs.Addf("amqp.tls", "is set but url %q is not a TLS scheme (amqp:// connects without TLS): use amqps://", config.RedactURLs(c.URL))
	}
	if q := c.QueueDeclare; q != nil {
		q.validate(&errs)
	}
	if cs := c.Consume; cs != nil && (cs.Prefetch < 0 || cs.Prefetch > 65535) {
		errs.Addf("amqp.consume.prefetch", "must be 0-65535, got %d", cs.Prefetch)
	}
	return errs.Err()
}

// settings are the resolved options of a valid Config.
type settings struct {
	exchangeDurable, exchangeAutoDelete, exchangeInternal bool
	queue                                                 string
	queueDurable, queueAutoDelete, queueExclusive         bool
	consumerTag                                           string
	autoAck, consumeExclusive                             bool
	prefetch                                              int
}

func (c *Config) settings() settings {
	s := settings{exchangeDurable: true, queueExclusive: true, prefetch: DefaultPrefetch}
	if e := c.ExchangeDeclare; e != nil {
		if e.Durable != nil {
			s.exchangeDurable = *e.Durable
		}
		s.exchangeAutoDelete, s.exchangeInternal = e.AutoDelete, e.Internal
	}
	if q := c.QueueDeclare; q != nil {
		s.queue, s.queueDurable, s.queueAutoDelete = q.Name, q.Durable, q.AutoDelete
		s.queueExclusive = q.Name == ""
		if q.Exclusive != nil {
			s.queueExclusive = *q.Exclusive
		}
	}
	if cs := c.Consume; cs != nil {
		s.consumerTag, s.autoAck, s.consumeExclusive = cs.ConsumerTag, cs.AutoAck, cs.Exclusive
		if cs.Prefetch > 0 {
			s.prefetch = cs.Prefetch
		}
	}
	return s
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
