package main

import (
	"strings"
	"testing"
	"time"

	"github.com/eventgate/eventgate/pkg/testenv"
)

func TestConfigValidation(t *testing.T) {
	tests := []testenv.ParseCase{ // WantErr empty: valid
		{Name: "v0.10 as written, backoff in nanoseconds", Data: `
url: nats://nats.argo-events:4222
subject: foo
backoff:
  duration: 10000000000
  factor: 2
  jitter: 0.2
  steps: 5`},
		{Name: "backoff as a Go duration", Data: "url: nats://localhost:4222\nsubject: foo\nbackoff: {duration: 10s, steps: 3}"},
		{Name: "v0.10 without backoff", Data: "url: nats://nats.argo-events:4222\nsubject: foo"},
		{Name: "cluster of servers", Data: "url: nats://a:4222, nats://b:4222,tls://c:4443\nsubject: orders.*"},
		{Name: "host:port without scheme", Data: "url: localhost:4222\nsubject: orders.>"},
		{Name: "websocket", Data: "url: wss://nats.example.com\nsubject: a.b"},
		{Name: "jsonBody and token", Data: "url: nats://x:4222\nsubject: a\njsonBody: true\ntoken: s3cret"},
		{Name: "username and password", Data: "url: nats://x:4222\nsubject: a\nusername: u\npassword: p"},
		{Name: "TLS with system CAs", Data: "url: tls://x:4443\nsubject: a\ntls: {}"},
		{Name: "token from a secret", Data: "url: nats://x:4222\nsubject: a\ntokenSecret: {name: nats-creds, key: token}"},
		{Name: "password from a secret", Data: "url: nats://x:4222\nsubject: a\nusername: u\npasswordSecret: {name: nats-creds, key: password}"},
		{Name: "secret as SecretKeySelector, optional", Data: "url: nats://x:4222\nsubject: a\ntokenSecret: {name: c, key: t, optional: false}"},
		{Name: "JetStream with defaults", Data: "url: nats://x:4222\nsubject: orders.*\njetStream: {stream: ORDERS, consumer: gateway}"},
		{Name: "JetStream with every field", Data: "url: nats://x:4222\nsubject: orders.>\njetStream: {stream: ORDERS, consumer: gw-1_a, deliverPolicy: new, ackWait: 1m, maxAckPending: 500}"},
		{Name: "JetStream ackWait in nanoseconds, deliverPolicy last", Data: "url: nats://x:4222\nsubject: a\njetStream: {stream: S, consumer: c, deliverPolicy: last, ackWait: 30000000000}"},

		{Name: "missing url", Data: "subject: foo", WantErr: "nats.url: is required"},
		{Name: "bad URL", Data: "url: nats://x:bad port\nsubject: foo", WantErr: `nats.url: "nats://x:bad port" is not a URL`},
		{Name: "wrong scheme", Data: "url: http://x:4222\nsubject: foo", WantErr: `nats.url: "http://x:4222" has scheme "http", want nats, tls, ws or wss`},
		{Name: "no host", Data: "url: nats://:4222\nsubject: foo", WantErr: `nats.url: "nats://:4222" has no host`},
		{Name: "stray comma", Data: "url: nats://a:4222,\nsubject: foo", WantErr: `nats.url: "" is empty`},
		{Name: "missing subject", Data: "url: nats://x:4222", WantErr: "nats.subject: is required"},
		{Name: "subject with space", Data: "url: nats://x:4222\nsubject: a b", WantErr: `nats.subject: "a b" must not contain white space`},
		{Name: "subject with empty token", Data: "url: nats://x:4222\nsubject: a..b", WantErr: `nats.subject: "a..b" has an empty token`},
		{Name: "full wildcard not last", Data: "url: nats://x:4222\nsubject: a.>.b", WantErr: `nats.subject: "a.>.b" has '>' before its last token`},
		{Name: "negative backoff", Data: "url: nats://x:4222\nsubject: a\nbackoff: {duration: -1s}", WantErr: "nats.backoff.duration: must not be negative, got -1s"},
		{Name: "negative steps", Data: "url: nats://x:4222\nsubject: a\nbackoff: {steps: -1}", WantErr: "nats.backoff.steps: must not be negative, got -1"},
		{Name: "backoff not a duration", Data: "url: nats://x:4222\nsubject: a\nbackoff: {duration: soon}", WantErr: `nats: invalid configuration: "soon" is not a duration`},
		{Name: "token and username", Data: "url: nats://x:4222\nsubject: a\ntoken: t\nusername: u", WantErr: "nats.token: use either a token or a username and password, not both"},
		{Name: "password alone", Data: "url: nats://x:4222\nsubject: a\npassword: p", WantErr: "nats.username: is required with a password"},
		{Name: "token inline and from a secret", Data: "url: nats://x:4222\nsubject: a\ntoken: t\ntokenSecret: {name: c, key: token}", WantErr: "nats.tokenSecret: cannot be used with nats.token: give the credential inline or from a secret, not both"},
		{Name: "password inline and from a secret", Data: "url: nats://x:4222\nsubject: a\nusername: u\npassword: p\npasswordSecret: {name: c, key: password}", WantErr: "nats.passwordSecret: cannot be used with nats.password: give the credential inline or from a secret, not both"},
		{Name: "token secret and username", Data: "url: nats://x:4222\nsubject: a\ntokenSecret: {name: c, key: token}\nusername: u", WantErr: "nats.token: use either a token or a username and password, not both"},
		{Name: "password secret alone", Data: "url: nats://x:4222\nsubject: a\npasswordSecret: {name: c, key: password}", WantErr: "nats.username: is required with a password"},
		{Name: "secret and credentials in the URL", Data: "url: nats://a:4222,nats://u:p@b:4222\nsubject: a\ntokenSecret: {name: c, key: token}", WantErr: "nats.url: holds credentials, which the client would use instead of tokenSecret or passwordSecret: remove them from the URL"},
		{Name: "secret without key", Data: "url: nats://x:4222\nsubject: a\ntokenSecret: {name: c}", WantErr: `nats.tokenSecret.key: required: the key in Secret "c"`},
		{Name: "secret without name", Data: "url: nats://x:4222\nsubject: a\nusername: u\npasswordSecret: {key: password}", WantErr: "nats.passwordSecret.name: required: the Secret's name"},
		{Name: "secret name not a name", Data: "url: nats://x:4222\nsubject: a\ntokenSecret: {name: My_Creds, key: token}", WantErr: `nats.tokenSecret.name: "My_Creds" is not a Secret name`},
		{Name: "secret a string", Data: "url: nats://x:4222\nsubject: a\ntokenSecret: creds", WantErr: "nats: invalid configuration"},
		{Name: "secret with an unknown field", Data: "url: nats://x:4222\nsubject: a\ntokenSecret: {name: c, key: k, namespace: other}", WantErr: `nats: invalid configuration: unknown field "namespace"`},
		{Name: "missing CA file", Data: "url: tls://x:4443\nsubject: a\ntls: {caCertPath: /nonexistent/ca.pem}", WantErr: "nats.tls: read CA certificate: open /nonexistent/ca.pem"},
		{Name: "JetStream without stream", Data: "url: nats://x:4222\nsubject: a\njetStream: {consumer: c}", WantErr: "nats.jetStream.stream: is required"},
		{Name: "JetStream without consumer", Data: "url: nats://x:4222\nsubject: a\njetStream: {stream: S}", WantErr: "nats.jetStream.consumer: is required (the durable consumer's name)"},
		{Name: "JetStream empty block", Data: "url: nats://x:4222\nsubject: a\njetStream: {}", WantErr: "nats.jetStream.stream: is required; nats.jetStream.consumer: is required"},
		{Name: "JetStream stream name with a dot", Data: "url: nats://x:4222\nsubject: a\njetStream: {stream: orders.v1, consumer: c}", WantErr: `nats.jetStream.stream: "orders.v1" must not contain '.', '*', '>', '/', '\' or white space`},
		{Name: "JetStream consumer name with a wildcard", Data: "url: nats://x:4222\nsubject: a\njetStream: {stream: S, consumer: 'gw*'}", WantErr: `nats.jetStream.consumer: "gw*" must not contain`},
		{Name: "JetStream consumer name with a slash", Data: "url: nats://x:4222\nsubject: a\njetStream: {stream: S, consumer: a/b}", WantErr: `nats.jetStream.consumer: "a/b" must not contain`},
		{Name: "JetStream stream name too long", Data: "url: nats://x:4222\nsubject: a\njetStream: {stream: " + strings.Repeat("s", 256) + ", consumer: c}", WantErr: "nats.jetStream.stream: is 256 characters long, at most 255 are allowed"},
		{Name: "JetStream unknown deliver policy", Data: "url: nats://x:4222\nsubject: a\njetStream: {stream: S, consumer: c, deliverPolicy: oldest}", WantErr: `nats.jetStream.deliverPolicy: "oldest" is not one of all, new, last`},
		{Name: "JetStream deliver policy in capitals", Data: "url: nats://x:4222\nsubject: a\njetStream: {stream: S, consumer: c, deliverPolicy: ALL}", WantErr: `nats.jetStream.deliverPolicy: "ALL" is not one of all, new, last`},
		{Name: "JetStream negative ackWait", Data: "url: nats://x:4222\nsubject: a\njetStream: {stream: S, consumer: c, ackWait: -1s}", WantErr: "nats.jetStream.ackWait: must not be negative, got -1s"},
		{Name: "JetStream ackWait not a duration", Data: "url: nats://x:4222\nsubject: a\njetStream: {stream: S, consumer: c, ackWait: long}", WantErr: `nats: invalid configuration: "long" is not a duration`},
		{Name: "JetStream negative maxAckPending", Data: "url: nats://x:4222\nsubject: a\njetStream: {stream: S, consumer: c, maxAckPending: -1}", WantErr: "nats.jetStream.maxAckPending: must not be negative, got -1 (0: the server's default)"},
		{Name: "JetStream unknown field", Data: "url: nats://x:4222\nsubject: a\njetStream: {stream: S, consumer: c, durable: d}", WantErr: `nats: invalid configuration: unknown field "durable"`},
		{Name: "JetStream not a block", Data: "url: nats://x:4222\nsubject: a\njetStream: true", WantErr: "nats: invalid configuration"},
		{Name: "backoff factor below 1", Data: "url: nats://x:4222\nsubject: a\nbackoff: {duration: 1s, factor: 0.5}", WantErr: "nats.backoff.factor: must be at least 1 (or 0: the default, 2), got 0.5"},
		{Name: "backoff jitter above 1", Data: "url: nats://x:4222\nsubject: a\nbackoff: {jitter: 1e300}", WantErr: "nats.backoff.jitter: must be at most 1 (the wait plus up to as much again at random), got 1e+300"},
		{Name: "unknown field", Data: "url: nats://x:4222\nsubjekt: a", WantErr: `nats: invalid configuration: unknown field "subjekt"`},
		{Name: "empty", Data: "", WantErr: "nats: configuration is empty"},
		{
			Name:    "every problem at once",
			Data:    "url: ftp://x\nbackoff: {duration: -5, factor: -1}",
			WantErr: `nats.url: "ftp://x" has scheme "ftp", want nats, tls, ws or wss; nats.subject: is required; nats.backoff.duration: must not be negative, got -5ns; nats.backoff.factor: must not be negative, got -1`,
		},
	}
	testenv.ExpectParse(t, newGateway().Parse, tests)
}

// Both v0.10 spellings of backoff.duration must mean the same wait.
func TestBackoffDurationSpellings(t *testing.T) {
	for _, data := range []string{"duration: 10000000000", "duration: 10s", `duration: "10000000000"`} {
		t.Run(data, func(t *testing.T) {
			src, err := newGateway().Parse("b", "url: nats://x:4222\nsubject: a\nbackoff: {"+data+"}")
			if err != nil {
				t.Fatal(err)
			}
			if got := time.Duration(src.(*source).cfg.Backoff.Duration); got != 10*time.Second {
				t.Errorf("backoff.duration = %s, want 10s", got)
			}
		})
	}
}

// The shipped examples must stay valid: they are what users copy.
func TestExamplesAreValid(t *testing.T) {
	sources := testenv.Examples(t, "../../../deploy/examples/nats", gatewayType)
	if len(sources) < 3 {
		t.Fatalf("example has %d event sources, want at least 3", len(sources))
	}
	for name, data := range sources {
		if _, err := newGateway().Parse(name, data); err != nil {
			t.Errorf("example %q: %v", name, err)
		}
	}
}
