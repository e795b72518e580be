package main

import (
	"os"
	"path/filepath"
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
	tests := []testenv.ParseCase{ // WantErr empty: valid
		{Name: "v0.10 as written", Data: "url: kafka.argo-events:9092\ntopic: topic-1\npartition: \"0\"\nbackoff:\n  duration: 10000000000\n  factor: 2\n  jitter: 0.2\n  steps: 5"},
		{Name: "partition as a number", Data: "url: k:9092\ntopic: t\npartition: 3"},
		{Name: "partition left out", Data: "url: k:9092\ntopic: t"},
		{Name: "backoff as a Go duration", Data: "url: k:9092\ntopic: t\nbackoff: {duration: 10s}"},
		{Name: "several brokers", Data: "url: k0:9092, k1:9092,10.0.0.7:9093,[::1]:9092\ntopic: t"},
		{Name: "consumer group", Data: "url: k:9092\ntopic: t\nconsumerGroup: {groupName: g, oldest: true}"},
		{Name: "SASL and TLS", Data: "url: k:9093\ntopic: t\nsasl: {username: u, password: p}\ntls: {insecureSkipVerify: true}"},
		{Name: "SASL password from a secret", Data: "url: k:9093\ntopic: t\nsasl: {username: u, passwordSecret: {name: kafka-creds, key: password}}"},
		{Name: "jsonBody", Data: "url: k:9092\ntopic: t\njsonBody: true"},

		{Name: "URL with a scheme", Data: "url: kafka://k:9092\ntopic: t", WantErr: `kafka.url: "kafka://k:9092" is not host:port: Kafka brokers are given without a scheme`},
		{Name: "URL without a port", Data: "url: kafka\ntopic: t", WantErr: `kafka.url: "kafka" is not host:port`},
		{Name: "bad port", Data: "url: k:99999\ntopic: t", WantErr: `kafka.url: "k:99999" has port "99999", want 1-65535`},
		{Name: "stray comma", Data: "url: k:9092,\ntopic: t", WantErr: `kafka.url: "" is empty (a stray comma in the list?)`},
		{Name: "missing URL", Data: "topic: t", WantErr: "kafka.url: is required, e.g. kafka.argo-events:9092"},
		{Name: "missing topic", Data: "url: k:9092", WantErr: "kafka.topic: is required"},
		{Name: "topic with a space", Data: "url: k:9092\ntopic: my topic", WantErr: `kafka.topic: "my topic" may hold only letters, digits, '.', '_' and '-'`},
		{Name: "negative partition", Data: "url: k:9092\ntopic: t\npartition: \"-1\"", WantErr: `kafka.partition: "-1" is not a partition number (0, 1, ...)`},
		{Name: "partition a word", Data: "url: k:9092\ntopic: t\npartition: zero", WantErr: `kafka.partition: "zero" is not a partition number`},
		{Name: "partition a fraction", Data: "url: k:9092\ntopic: t\npartition: 1.5", WantErr: `kafka.partition: "1.5" is not a partition number`},
		{Name: "negative backoff", Data: "url: k:9092\ntopic: t\nbackoff: {duration: -10000000000}", WantErr: "kafka.backoff.duration: must not be negative, got -10s"},
		{Name: "negative backoff string", Data: "url: k:9092\ntopic: t\nbackoff: {duration: -1s, steps: -1}", WantErr: "kafka.backoff.duration: must not be negative, got -1s; kafka.backoff.steps: must not be negative, got -1"},
		{Name: "group without a name", Data: "url: k:9092\ntopic: t\nconsumerGroup: {oldest: true}", WantErr: "kafka.consumerGroup.groupName: is required with a consumer group"},
		{Name: "SASL mechanism", Data: "url: k:9092\ntopic: t\nsasl: {mechanism: SCRAM-SHA-512, username: u, password: p}", WantErr: `kafka.sasl.mechanism: "SCRAM-SHA-512" is not supported, only PLAIN`},
		{Name: "SASL without a password", Data: "url: k:9092\ntopic: t\nsasl: {username: u}", WantErr: "kafka.sasl.password: is required"},
		{Name: "SASL password inline and from a secret", Data: "url: k:9092\ntopic: t\nsasl: {username: u, password: p, passwordSecret: {name: c, key: password}}", WantErr: "kafka.sasl.passwordSecret: cannot be used with kafka.sasl.password: give the credential inline or from a secret, not both"},
		{Name: "SASL secret without key", Data: "url: k:9092\ntopic: t\nsasl: {username: u, passwordSecret: {name: c}}", WantErr: `kafka.sasl.passwordSecret.key: required: the key in Secret "c"`},
		{Name: "SASL secret without username", Data: "url: k:9092\ntopic: t\nsasl: {passwordSecret: {name: c, key: password}}", WantErr: "kafka.sasl.username: is required"},
		{Name: "TLS CA not PEM", Data: "url: k:9092\ntopic: t\ntls: {caCertPath: " + notPEM + "}", WantErr: "kafka.tls: CA certificate " + notPEM + " holds no PEM certificate"},
		{Name: "unknown field", Data: "url: k:9092\ntopic: t\npartitions: 1", WantErr: `kafka: invalid configuration: unknown field "partitions"`},
		{Name: "empty", Data: "", WantErr: "kafka: configuration is empty"},
		{
			Name:    "every problem at once",
			Data:    "url: k\npartition: x\nbackoff: {factor: -2}",
			WantErr: `kafka.url: "k" is not host:port; kafka.partition: "x" is not a partition number (0, 1, ...); kafka.topic: is required; kafka.backoff.factor: must not be negative, got -2`,
		},
	}
	testenv.ExpectParse(t, gateway{}.Parse, tests)
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
