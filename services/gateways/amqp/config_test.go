package main

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/eventgate/eventgate/pkg/config"
	"github.com/eventgate/eventgate/pkg/testenv"
)

func TestConfigValidation(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "ca.crt")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []testenv.ParseCase{ // WantErr empty: valid
		{Name: "v0.10 as written", Data: "url: amqp://amqp.argo-events:5672\nexchangeName: foo\nexchangeType: fanout\nroutingKey: hello\nbackoff:\n  duration: 10000000000\n  factor: 2\n  jitter: 0.2\n  steps: 5"},
		{Name: "backoff as a Go duration", Data: "url: amqp://h\nexchangeName: e\nexchangeType: direct\nbackoff: {duration: 10s}"},
		{Name: "every exchange type", Data: "url: amqp://h\nexchangeName: e\nexchangeType: headers"},
		{Name: "credentials and vhost", Data: "url: amqp://user:p%40ss@h:5672/vhost\nexchangeName: e\nexchangeType: topic"},
		{Name: "amqps and TLS", Data: "url: amqps://h:5671/\nexchangeName: e\nexchangeType: topic\ntls: {insecureSkipVerify: true}"},
		{Name: "password from a secret", Data: "url: amqp://gateway@h:5672/vhost\nexchangeName: e\nexchangeType: topic\npasswordSecret: {name: amqp-creds, key: password}"},
		{Name: "all options", Data: "url: amqp://h\nexchangeName: e\nexchangeType: topic\njsonBody: true\nexchangeDeclare: {durable: false, autoDelete: true, internal: false}\nqueueDeclare: {Name: q, durable: true, autoDelete: false, exclusive: false}\nconsume: {consumerTag: t, autoAck: true, exclusive: true, prefetch: 10}"},

		{Name: "queue arguments", Data: "url: amqp://h\nexchangeName: e\nexchangeType: topic\nqueueDeclare:\n  name: q\n  durable: true\n  arguments:\n    x-queue-type: quorum\n    x-dead-letter-exchange: dlx\n    x-delivery-limit: 5\n    x-custom: {list: [1, 2.5, a, true], 'null': null}"},
		{Name: "queue arguments as Argo's JSON string", Data: "url: amqp://h\nexchangeName: e\nexchangeType: topic\nqueueDeclare: {name: q, durable: true, arguments: '{\"x-queue-type\": \"quorum\"}'}"},
		{Name: "queue arguments, empty string", Data: "url: amqp://h\nexchangeName: e\nexchangeType: topic\nqueueDeclare: {name: q, arguments: ''}"},

		{Name: "bad URL scheme", Data: "url: http://h/\nexchangeName: e\nexchangeType: topic", WantErr: `amqp.url: "http://h/" is not an AMQP URL: AMQP scheme must be either 'amqp://' or 'amqps://'`},
		{Name: "bad URL hides the password", Data: "url: 'ftp://u:secret@h/'\nexchangeName: e\nexchangeType: topic", WantErr: `amqp.url: "ftp://u:xxxxx@h/" is not an AMQP URL`},
		{Name: "missing URL", Data: "exchangeName: e\nexchangeType: topic", WantErr: "amqp.url: is required"},
		{Name: "password in the URL and from a secret", Data: "url: amqp://u:p@h/\nexchangeName: e\nexchangeType: topic\npasswordSecret: {name: c, key: password}", WantErr: "amqp.passwordSecret: cannot be used with amqp.url's password: give the credential inline or from a secret, not both"},
		{Name: "password secret without a user", Data: "url: amqp://h:5672/\nexchangeName: e\nexchangeType: topic\npasswordSecret: {name: c, key: password}", WantErr: "amqp.url: needs the user with passwordSecret: amqp://USER@h:5672"},
		{Name: "password secret without key", Data: "url: amqp://u@h/\nexchangeName: e\nexchangeType: topic\npasswordSecret: {name: c}", WantErr: `amqp.passwordSecret.key: required: the key in Secret "c"`},
		{Name: "missing exchange", Data: "url: amqp://h\nexchangeType: topic", WantErr: "amqp.exchangeName: is required"},
		{Name: "unknown exchange type", Data: "url: amqp://h\nexchangeName: e\nexchangeType: x-delayed", WantErr: `amqp.exchangeType: must be one of direct, fanout, topic, headers, got "x-delayed"`},
		{Name: "missing exchange type", Data: "url: amqp://h\nexchangeName: e", WantErr: `amqp.exchangeType: must be one of direct, fanout, topic, headers, got ""`},
		{Name: "negative backoff", Data: "url: amqp://h\nexchangeName: e\nexchangeType: topic\nbackoff: {duration: -10000000000}", WantErr: "amqp.backoff.duration: must not be negative, got -10s"},
		{Name: "negative backoff string", Data: "url: amqp://h\nexchangeName: e\nexchangeType: topic\nbackoff: {duration: -1s, jitter: -1}", WantErr: "amqp.backoff.duration: must not be negative, got -1s; amqp.backoff.jitter: must not be negative, got -1"},
		{Name: "reserved queue name", Data: "url: amqp://h\nexchangeName: e\nexchangeType: topic\nqueueDeclare: {Name: amq.mine}", WantErr: `amqp.queueDeclare.name: "amq.mine" is reserved by the broker (amq.*)`},
		{Name: "server-named non-exclusive auto-delete queue", Data: "url: amqp://h\nexchangeName: e\nexchangeType: topic\nqueueDeclare: {exclusive: false, autoDelete: true}"},
		{Name: "server-named non-exclusive queue", Data: "url: amqp://h\nexchangeName: e\nexchangeType: topic\nqueueDeclare: {exclusive: false, durable: true}",
			WantErr: "amqp.queueDeclare.name: is required with exclusive: false (unless autoDelete: true): each connection would leave a server-named queue behind, collecting messages for ever; for at least once, name a durable queue (queueDeclare: {name: NAME, durable: true})"},
		{Name: "queue arguments not a map", Data: "url: amqp://h\nexchangeName: e\nexchangeType: topic\nqueueDeclare: {name: q, arguments: [x-queue-type, quorum]}",
			WantErr: `amqp: invalid configuration: arguments: must be a map of x-arguments, e.g. {x-queue-type: quorum}: `},
		{Name: "queue arguments string not JSON", Data: "url: amqp://h\nexchangeName: e\nexchangeType: topic\nqueueDeclare: {name: q, arguments: 'x-queue-type=quorum'}",
			WantErr: `amqp: invalid configuration: arguments: a string must hold a JSON object (Argo Events v1's form): `},
		{Name: "queue argument integer out of range", Data: "url: amqp://h\nexchangeName: e\nexchangeType: topic\nqueueDeclare: {name: q, arguments: {x-max-length: 18446744073709551615}}",
			WantErr: `amqp.queueDeclare.arguments.x-max-length: integer 18446744073709551615 is out of range (64 bits)`},
		{Name: "queue argument name too long", Data: "url: amqp://h\nexchangeName: e\nexchangeType: topic\nqueueDeclare: {name: q, arguments: {x-" + strings.Repeat("a", 254) + ": 1}}",
			WantErr: "amqp.queueDeclare.arguments.x-" + strings.Repeat("a", 254) + ": name is 256 bytes, AMQP allows 255"},
		{Name: "quorum queue not durable", Data: "url: amqp://h\nexchangeName: e\nexchangeType: topic\nqueueDeclare: {name: q, arguments: {x-queue-type: quorum}}",
			WantErr: "amqp.queueDeclare: a quorum queue must be named, durable, not exclusive and not autoDelete: queueDeclare: {name: NAME, durable: true, arguments: {x-queue-type: quorum}}"},
		{Name: "server-named quorum queue", Data: "url: amqp://h\nexchangeName: e\nexchangeType: topic\nqueueDeclare: {durable: true, arguments: '{\"x-queue-type\": \"quorum\"}'}",
			WantErr: "amqp.queueDeclare: a quorum queue must be named"},
		{Name: "prefetch out of range", Data: "url: amqp://h\nexchangeName: e\nexchangeType: topic\nconsume: {prefetch: -1}", WantErr: "amqp.consume.prefetch: must be 0-65535, got -1"},
		{Name: "TLS with an amqp URL", Data: "url: amqp://h:5672/\nexchangeName: e\nexchangeType: topic\ntls: {}", WantErr: `amqp.tls: is set but url "amqp://h:5672/" is not a TLS scheme (amqp:// connects without TLS): use amqps://`},
		{Name: "TLS with an amqp URL, password hidden", Data: "url: amqp://u:secret@h/\nexchangeName: e\nexchangeType: topic\ntls: {insecureSkipVerify: true}", WantErr: `amqp.tls: is set but url "amqp://u:xxxxx@h/" is not a TLS scheme (amqp:// connects without TLS): use amqps://`},
		{Name: "TLS CA not PEM", Data: "url: amqps://h\nexchangeName: e\nexchangeType: topic\ntls: {caCertPath: " + notPEM + "}", WantErr: "amqp.tls: CA certificate " + notPEM + " holds no PEM certificate"},
		{Name: "unknown field", Data: "url: amqp://h\nexchangeName: e\nexchangeType: topic\nqueue: q", WantErr: `amqp: invalid configuration: unknown field "queue"`},
		{Name: "empty", Data: " ", WantErr: "amqp: configuration is empty"},
		{
			Name:    "every problem at once",
			Data:    "url: nats://h\nexchangeType: fanout-ish\nbackoff: {steps: -3}",
			WantErr: `amqp.url: "nats://h" is not an AMQP URL: AMQP scheme must be either 'amqp://' or 'amqps://'; amqp.exchangeName: is required; amqp.exchangeType: must be one of direct, fanout, topic, headers, got "fanout-ish"; amqp.backoff.steps: must not be negative, got -3`,
		},
	}
	testenv.ExpectParse(t, gateway{}.Parse, tests)
}

// Arguments are checked with the library's own Table.Validate, so that a value it could not
// encode is refused with its name instead of failing every declaration. A YAML configuration
// holds only values it can encode (see Arguments); these are a Config built in Go.
func TestQueueArgumentsValidation(t *testing.T) {
	base := Config{URL: "amqp://h", ExchangeName: "e", ExchangeType: "topic"}
	for _, tc := range []struct {
		name    string
		args    Arguments
		wantErr string
	}{
		{"AMQP values", Arguments{"s": "x", "i": int64(1), "f": 1.5, "b": true, "n": nil, "t": amqp.Table{"l": []any{int32(1)}}}, ""},
		{"unsigned 64 bits", Arguments{"x-max-length": uint64(1)}, "amqp.queueDeclare.arguments.x-max-length: value uint64 not supported"},
		{"a Go map in a list", Arguments{"x-list": []any{map[int]string{1: "a"}}}, "amqp.queueDeclare.arguments.x-list: in array value map[int]string not supported"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := base
			c.QueueDeclare = &QueueDeclare{Name: "q", Arguments: tc.args}
			err := c.Validate()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil || err.Error() != tc.wantErr {
				t.Fatalf("Validate = %v, want %q", err, tc.wantErr)
			}
		})
	}
}

// What the declaration sends: whole numbers as integers (RabbitMQ refuses a float for
// x-max-length and the like), maps as tables, from a YAML map or Argo's JSON string alike.
func TestQueueArgumentsTable(t *testing.T) {
	want := amqp.Table{"x-queue-type": "quorum", "x-max-length": int64(1000), "x-ratio": 0.5, "x-t": amqp.Table{"l": []any{int64(1), "a"}}}
	for _, args := range []string{
		"{x-queue-type: quorum, x-max-length: 1000, x-ratio: 0.5, x-t: {l: [1, a]}}",
		`'{"x-queue-type": "quorum", "x-max-length": 1000, "x-ratio": 0.5, "x-t": {"l": [1, "a"]}}'`,
		"{x-queue-type: quorum, x-max-length: 1e3, x-ratio: 0.5, x-t: {l: [1.0, a]}}",
	} {
		src, err := gateway{}.Parse("x", "url: amqp://h\nexchangeName: e\nexchangeType: topic\nqueueDeclare: {name: q, durable: true, arguments: "+args+"}")
		if err != nil {
			t.Fatal(err)
		}
		if got := src.(*source).queueArgs; !reflect.DeepEqual(got, want) {
			t.Errorf("arguments %s: table = %#v, want %#v", args, got, want)
		}
	}
}

func TestConfigDefaults(t *testing.T) {
	no, yes := false, true
	tests := []struct {
		name string
		cfg  Config
		want settings
	}{
		{
			name: "v0.10: durable exchange, server-named exclusive queue; but acks after hand-off",
			want: settings{exchangeDurable: true, queueExclusive: true, prefetch: DefaultPrefetch},
		},
		{
			name: "a named queue is not exclusive unless asked",
			cfg:  Config{QueueDeclare: &QueueDeclare{Name: "q", Durable: true}},
			want: settings{exchangeDurable: true, queue: "q", queueDurable: true, prefetch: DefaultPrefetch},
		},
		{
			name: "explicit choices win",
			cfg: Config{
				ExchangeDeclare: &ExchangeDeclare{Durable: &no, AutoDelete: true},
				QueueDeclare:    &QueueDeclare{Name: "q", Exclusive: &yes},
				Consume:         &Consume{AutoAck: true, Prefetch: 5, ConsumerTag: "t"},
			},
			want: settings{exchangeAutoDelete: true, queue: "q", queueExclusive: true, autoAck: true, consumerTag: "t", prefetch: 5},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.cfg.settings(); got != tc.want {
				t.Errorf("settings = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestConfigReadsV010Backoff(t *testing.T) {
	src, err := gateway{}.Parse("x", "url: amqp://h\nexchangeName: e\nexchangeType: topic\nbackoff: {duration: 10000000000, factor: 1.5, jitter: 0.1, steps: 4}")
	if err != nil {
		t.Fatal(err)
	}
	want := config.Backoff{Duration: config.Duration(10 * time.Second), Factor: 1.5, Jitter: 0.1, Steps: 4}
	if got := src.(*source).cfg.Backoff; got != want {
		t.Errorf("backoff = %+v, want %+v", got, want)
	}
}

// The shipped examples (the Gateway manifest and its event sources) must stay valid: they
// are what users copy.
func TestExamplesAreValid(t *testing.T) {
	sources := testenv.Examples(t, "../../../deploy/examples/amqp", gatewayType)
	if len(sources) < 3 {
		t.Fatalf("example has %d event sources, want at least 3", len(sources))
	}
	for name, data := range sources {
		if _, err := (gateway{}).Parse(name, data); err != nil {
			t.Errorf("example %q: %v", name, err)
		}
	}
}
