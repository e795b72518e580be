package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/eventgate/eventgate/pkg/config"
	"github.com/eventgate/eventgate/pkg/testenv"
)

func TestConfigValidation(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "ca.crt")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, data string
		wantErr    string // empty: valid
	}{
		{name: "v0.10 as written", data: "url: amqp://amqp.argo-events:5672\nexchangeName: foo\nexchangeType: fanout\nroutingKey: hello\nbackoff:\n  duration: 10000000000\n  factor: 2\n  jitter: 0.2\n  steps: 5"},
		{name: "backoff as a Go duration", data: "url: amqp://h\nexchangeName: e\nexchangeType: direct\nbackoff: {duration: 10s}"},
		{name: "every exchange type", data: "url: amqp://h\nexchangeName: e\nexchangeType: headers"},
		{name: "credentials and vhost", data: "url: amqp://user:p%40ss@h:5672/vhost\nexchangeName: e\nexchangeType: topic"},
		{name: "amqps and TLS", data: "url: amqps://h:5671/\nexchangeName: e\nexchangeType: topic\ntls: {insecureSkipVerify: true}"},
		{name: "all options", data: "url: amqp://h\nexchangeName: e\nexchangeType: topic\njsonBody: true\nexchangeDeclare: {durable: false, autoDelete: true, internal: false}\nqueueDeclare: {name: q, durable: true, autoDelete: false, exclusive: false}\nconsume: {consumerTag: t, autoAck: true, exclusive: true, prefetch: 10}"},

		{name: "bad URL scheme", data: "url: http://h/\nexchangeName: e\nexchangeType: topic", wantErr: `amqp.url: "http://h/" is not an AMQP URL: AMQP scheme must be either 'amqp://' or 'amqps://'`},
		{name: "bad URL hides the password", data: "url: 'ftp://u:secret@h/'\nexchangeName: e\nexchangeType: topic", wantErr: `amqp.url: "ftp://u:xxxxx@h/" is not an AMQP URL`},
		{name: "missing URL", data: "exchangeName: e\nexchangeType: topic", wantErr: "amqp.url: is required"},
		{name: "missing exchange", data: "url: amqp://h\nexchangeType: topic", wantErr: "amqp.exchangeName: is required"},
		{name: "unknown exchange type", data: "url: amqp://h\nexchangeName: e\nexchangeType: x-delayed", wantErr: `amqp.exchangeType: must be one of direct, fanout, topic, headers, got "x-delayed"`},
		{name: "missing exchange type", data: "url: amqp://h\nexchangeName: e", wantErr: `amqp.exchangeType: must be one of direct, fanout, topic, headers, got ""`},
		{name: "negative backoff", data: "url: amqp://h\nexchangeName: e\nexchangeType: topic\nbackoff: {duration: -10000000000}", wantErr: "amqp.backoff.duration: must not be negative, got -10s"},
		{name: "negative backoff string", data: "url: amqp://h\nexchangeName: e\nexchangeType: topic\nbackoff: {duration: -1s, jitter: -1}", wantErr: "amqp.backoff.duration: must not be negative, got -1s; amqp.backoff.jitter: must not be negative, got -1"},
		{name: "reserved queue name", data: "url: amqp://h\nexchangeName: e\nexchangeType: topic\nqueueDeclare: {name: amq.mine}", wantErr: `amqp.queueDeclare.name: "amq.mine" is reserved by the broker (amq.*)`},
		{name: "prefetch out of range", data: "url: amqp://h\nexchangeName: e\nexchangeType: topic\nconsume: {prefetch: -1}", wantErr: "amqp.consume.prefetch: must be 0-65535, got -1"},
		{name: "TLS CA not PEM", data: "url: amqps://h\nexchangeName: e\nexchangeType: topic\ntls: {caCertPath: " + notPEM + "}", wantErr: "amqp.tls: CA certificate " + notPEM + " holds no PEM certificate"},
		{name: "unknown field", data: "url: amqp://h\nexchangeName: e\nexchangeType: topic\nqueue: q", wantErr: `amqp: invalid configuration: unknown field "queue"`},
		{name: "empty", data: " ", wantErr: "amqp: configuration is empty"},
		{
			name:    "every problem at once",
			data:    "url: nats://h\nexchangeType: fanout-ish\nbackoff: {steps: -3}",
			wantErr: `amqp.url: "nats://h" is not an AMQP URL: AMQP scheme must be either 'amqp://' or 'amqps://'; amqp.exchangeName: is required; amqp.exchangeType: must be one of direct, fanout, topic, headers, got "fanout-ish"; amqp.backoff.steps: must not be negative, got -3`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := gateway{}.Parse(tc.name, tc.data)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				return
			}
			if err == nil || !strings.HasPrefix(err.Error(), tc.wantErr) {
				t.Fatalf("Parse error = %v, want prefix %q", err, tc.wantErr)
			}
		})
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
