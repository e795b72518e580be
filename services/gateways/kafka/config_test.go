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
		{name: "v0.10 as written", data: "url: kafka.argo-events:9092\ntopic: topic-1\npartition: \"0\"\nbackoff:\n  duration: 10000000000\n  factor: 2\n  jitter: 0.2\n  steps: 5"},
		{name: "partition as a number", data: "url: k:9092\ntopic: t\npartition: 3"},
		{name: "partition left out", data: "url: k:9092\ntopic: t"},
		{name: "backoff as a Go duration", data: "url: k:9092\ntopic: t\nbackoff: {duration: 10s}"},
		{name: "several brokers", data: "url: k0:9092, k1:9092,10.0.0.7:9093,[::1]:9092\ntopic: t"},
		{name: "consumer group", data: "url: k:9092\ntopic: t\nconsumerGroup: {groupName: g, oldest: true}"},
		{name: "SASL and TLS", data: "url: k:9093\ntopic: t\nsasl: {username: u, password: p}\ntls: {insecureSkipVerify: true}"},
		{name: "jsonBody", data: "url: k:9092\ntopic: t\njsonBody: true"},

		{name: "URL with a scheme", data: "url: kafka://k:9092\ntopic: t", wantErr: `kafka.url: "kafka://k:9092" is not host:port: Kafka brokers are given without a scheme`},
		{name: "URL without a port", data: "url: kafka\ntopic: t", wantErr: `kafka.url: "kafka" is not host:port`},
		{name: "bad port", data: "url: k:99999\ntopic: t", wantErr: `kafka.url: "k:99999" has port "99999", want 1-65535`},
		{name: "stray comma", data: "url: k:9092,\ntopic: t", wantErr: `kafka.url: "" is empty (a stray comma in the list?)`},
		{name: "missing URL", data: "topic: t", wantErr: "kafka.url: is required, e.g. kafka.argo-events:9092"},
		{name: "missing topic", data: "url: k:9092", wantErr: "kafka.topic: is required"},
		{name: "topic with a space", data: "url: k:9092\ntopic: my topic", wantErr: `kafka.topic: "my topic" may hold only letters, digits, '.', '_' and '-'`},
		{name: "negative partition", data: "url: k:9092\ntopic: t\npartition: \"-1\"", wantErr: `kafka.partition: "-1" is not a partition number (0, 1, ...)`},
		{name: "partition a word", data: "url: k:9092\ntopic: t\npartition: zero", wantErr: `kafka.partition: "zero" is not a partition number`},
		{name: "partition a fraction", data: "url: k:9092\ntopic: t\npartition: 1.5", wantErr: `kafka.partition: "1.5" is not a partition number`},
		{name: "negative backoff", data: "url: k:9092\ntopic: t\nbackoff: {duration: -10000000000}", wantErr: "kafka.backoff.duration: must not be negative, got -10s"},
		{name: "negative backoff string", data: "url: k:9092\ntopic: t\nbackoff: {duration: -1s, steps: -1}", wantErr: "kafka.backoff.duration: must not be negative, got -1s; kafka.backoff.steps: must not be negative, got -1"},
		{name: "group without a name", data: "url: k:9092\ntopic: t\nconsumerGroup: {oldest: true}", wantErr: "kafka.consumerGroup.groupName: is required with a consumer group"},
		{name: "SASL mechanism", data: "url: k:9092\ntopic: t\nsasl: {mechanism: SCRAM-SHA-512, username: u, password: p}", wantErr: `kafka.sasl.mechanism: "SCRAM-SHA-512" is not supported, only PLAIN`},
		{name: "SASL without a password", data: "url: k:9092\ntopic: t\nsasl: {username: u}", wantErr: "kafka.sasl.password: is required"},
		{name: "TLS CA not PEM", data: "url: k:9092\ntopic: t\ntls: {caCertPath: " + notPEM + "}", wantErr: "kafka.tls: CA certificate " + notPEM + " holds no PEM certificate"},
		{name: "unknown field", data: "url: k:9092\ntopic: t\npartitions: 1", wantErr: `kafka: invalid configuration: unknown field "partitions"`},
		{name: "empty", data: "", wantErr: "kafka: configuration is empty"},
		{
			name:    "every problem at once",
			data:    "url: k\npartition: x\nbackoff: {factor: -2}",
			wantErr: `kafka.url: "k" is not host:port; kafka.partition: "x" is not a partition number (0, 1, ...); kafka.topic: is required; kafka.backoff.factor: must not be negative, got -2`,
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

func TestConfigReadsV010Values(t *testing.T) {
	src, err := gateway{}.Parse("x", "url: a:1,b:2\ntopic: t\npartition: \"7\"\nbackoff: {duration: 10000000000, factor: 1.5, jitter: 0.1, steps: 4}")
	if err != nil {
		t.Fatal(err)
	}
	cfg := src.(*source).cfg
	p, _ := cfg.partition()
	if got := cfg.brokers(); len(got) != 2 || got[0] != "a:1" || got[1] != "b:2" || p != 7 {
		t.Errorf("brokers %v partition %d", got, p)
	}
	want := config.Backoff{Duration: config.Duration(10 * time.Second), Factor: 1.5, Jitter: 0.1, Steps: 4}
	if cfg.Backoff != want {
		t.Errorf("backoff = %+v, want %+v", cfg.Backoff, want)
	}
}

// The shipped examples (the Gateway manifest and its event sources) must stay valid: they
// are what users copy.
func TestExamplesAreValid(t *testing.T) {
	sources := testenv.Examples(t, "../../../deploy/examples/kafka", gatewayType)
	if len(sources) < 3 {
		t.Fatalf("example has %d event sources, want at least 3", len(sources))
	}
	for name, data := range sources {
		if _, err := (gateway{}).Parse(name, data); err != nil {
			t.Errorf("example %q: %v", name, err)
		}
	}
}
