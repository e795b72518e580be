package main

import (
	"strings"
	"testing"
	"time"

	"github.com/eventgate/eventgate/pkg/testenv"
)

func TestConfigValidation(t *testing.T) {
	tests := []struct {
		name, data string
		wantErr    string // empty: valid
	}{
		{name: "v0.10 as written, backoff in nanoseconds", data: `
url: nats://nats.argo-events:4222
subject: foo
backoff:
  duration: 10000000000
  factor: 2
  jitter: 0.2
  steps: 5`},
		{name: "backoff as a Go duration", data: "url: nats://localhost:4222\nsubject: foo\nbackoff: {duration: 10s, steps: 3}"},
		{name: "v0.10 without backoff", data: "url: nats://nats.argo-events:4222\nsubject: foo"},
		{name: "cluster of servers", data: "url: nats://a:4222, nats://b:4222,tls://c:4443\nsubject: orders.*"},
		{name: "host:port without scheme", data: "url: localhost:4222\nsubject: orders.>"},
		{name: "websocket", data: "url: wss://nats.example.com\nsubject: a.b"},
		{name: "jsonBody and token", data: "url: nats://x:4222\nsubject: a\njsonBody: true\ntoken: s3cret"},
		{name: "username and password", data: "url: nats://x:4222\nsubject: a\nusername: u\npassword: p"},
		{name: "TLS with system CAs", data: "url: tls://x:4443\nsubject: a\ntls: {}"},

		{name: "missing url", data: "subject: foo", wantErr: "nats.url: is required"},
		{name: "bad URL", data: "url: nats://x:bad port\nsubject: foo", wantErr: `nats.url: "nats://x:bad port" is not a URL`},
		{name: "wrong scheme", data: "url: http://x:4222\nsubject: foo", wantErr: `nats.url: "http://x:4222" has scheme "http", want nats, tls, ws or wss`},
		{name: "no host", data: "url: nats://:4222\nsubject: foo", wantErr: `nats.url: "nats://:4222" has no host`},
		{name: "stray comma", data: "url: nats://a:4222,\nsubject: foo", wantErr: `nats.url: "" is empty`},
		{name: "missing subject", data: "url: nats://x:4222", wantErr: "nats.subject: is required"},
		{name: "subject with space", data: "url: nats://x:4222\nsubject: a b", wantErr: `nats.subject: "a b" must not contain white space`},
		{name: "subject with empty token", data: "url: nats://x:4222\nsubject: a..b", wantErr: `nats.subject: "a..b" has an empty token`},
		{name: "full wildcard not last", data: "url: nats://x:4222\nsubject: a.>.b", wantErr: `nats.subject: "a.>.b" has '>' before its last token`},
		{name: "negative backoff", data: "url: nats://x:4222\nsubject: a\nbackoff: {duration: -1s}", wantErr: "nats.backoff.duration: must not be negative, got -1s"},
		{name: "negative steps", data: "url: nats://x:4222\nsubject: a\nbackoff: {steps: -1}", wantErr: "nats.backoff.steps: must not be negative, got -1"},
		{name: "backoff not a duration", data: "url: nats://x:4222\nsubject: a\nbackoff: {duration: soon}", wantErr: `nats: invalid configuration: "soon" is not a duration`},
		{name: "token and username", data: "url: nats://x:4222\nsubject: a\ntoken: t\nusername: u", wantErr: "nats.token: use either a token or a username and password, not both"},
		{name: "password alone", data: "url: nats://x:4222\nsubject: a\npassword: p", wantErr: "nats.username: is required with a password"},
		{name: "missing CA file", data: "url: tls://x:4443\nsubject: a\ntls: {caCertPath: /nonexistent/ca.pem}", wantErr: "nats.tls: read CA certificate: open /nonexistent/ca.pem"},
		{name: "unknown field", data: "url: nats://x:4222\nsubjekt: a", wantErr: `nats: invalid configuration: unknown field "subjekt"`},
		{name: "empty", data: "", wantErr: "nats: configuration is empty"},
		{
			name:    "every problem at once",
			data:    "url: ftp://x\nbackoff: {duration: -5, factor: -1}",
			wantErr: `nats.url: "ftp://x" has scheme "ftp", want nats, tls, ws or wss; nats.subject: is required; nats.backoff.duration: must not be negative, got -5ns; nats.backoff.factor: must not be negative, got -1`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := newGateway().Parse(tc.name, tc.data)
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
