package main

import (
	"strings"
	"testing"
	"time"

	"github.com/eventgate/eventgate/pkg/testenv"
)

func TestConfigValidation(t *testing.T) {
	tests := []testenv.ParseCase{ // WantErr empty: valid
		{Name: "v0.10 as written: numeric clientId, backoff in nanoseconds", Data: `
url: tcp://mqtt.argo-events:1883
topic: foo
clientId: 1234
backoff:
  duration: 10000000000
  factor: 2
  jitter: 0.2
  steps: 5`},
		{Name: "backoff as a Go duration", Data: "url: tcp://localhost:1883\ntopic: foo\nclientId: gw-1\nbackoff: {duration: 10s}"},
		{Name: "v0.10 without backoff or clientId", Data: "url: tcp://mqtt.argo-events:1883\ntopic: foo"},
		{Name: "wildcards", Data: "url: mqtt://x:1883\ntopic: sensors/+/temp/#"},
		{Name: "root wildcard", Data: "url: mqtt://x:1883\ntopic: '#'"},
		{Name: "shared subscription", Data: "url: tcp://x:1883\ntopic: $share/gateways/orders"},
		{Name: "brokers, TLS, auth, QoS 2, jsonBody", Data: "url: ssl://a:8883, ssl://b:8883\ntopic: t\ntls: {}\nusername: u\npassword: p\nqos: 2\njsonBody: true"},
		{Name: "TLS with mqtts, tls and wss URLs", Data: "url: mqtts://a:8883, tls://b:8883, wss://c:443/mqtt\ntopic: t\ntls: {insecureSkipVerify: true}"},
		{Name: "QoS 0 with a clean session", Data: "url: ws://x:80/mqtt\ntopic: t\nqos: 0\ncleanSession: true\nclientId: x"},
		{Name: "password from a secret", Data: "url: tcp://x:1883\ntopic: t\nusername: u\npasswordSecret: {name: mqtt-creds, key: password}"},

		{Name: "missing url", Data: "topic: foo", WantErr: "mqtt.url: is required"},
		{Name: "bad URL", Data: "url: 'tcp://x:bad port'\ntopic: foo", WantErr: `mqtt.url: "tcp://x:bad port" is not a URL`},
		{Name: "no scheme", Data: "url: x:1883\ntopic: foo", WantErr: `mqtt.url: "x:1883" has scheme "x", want tcp, mqtt, ssl, tls, mqtts, ws or wss`},
		{Name: "no host", Data: "url: tcp://:1883\ntopic: foo", WantErr: `mqtt.url: "tcp://:1883" has no host`},
		{Name: "missing topic", Data: "url: tcp://x:1883", WantErr: "mqtt.topic: is required"},
		{Name: "TLS with a tcp URL", Data: "url: tcp://x:1883\ntopic: t\ntls: {}", WantErr: `mqtt.tls: is set but url "tcp://x:1883" is not a TLS scheme (tcp:// connects without TLS): use ssl:// (or mqtts://)`},
		{Name: "TLS with an mqtt URL, credentials hidden", Data: "url: mqtt://u:secret@x:1883\ntopic: t\ntls: {}", WantErr: `mqtt.tls: is set but url "mqtt://u:xxxxx@x:1883" is not a TLS scheme (mqtt:// connects without TLS): use ssl:// (or mqtts://)`},
		{Name: "TLS with a ws URL among TLS ones", Data: "url: ssl://a:8883, ws://b:80/mqtt\ntopic: t\ntls: {}", WantErr: `mqtt.tls: is set but url "ws://b:80/mqtt" is not a TLS scheme (ws:// connects without TLS): use wss://`},
		{Name: "# not last", Data: "url: tcp://x:1883\ntopic: a/#/b", WantErr: `mqtt.topic: "a/#/b": '#' must be the whole last level`},
		{Name: "+ inside a level", Data: "url: tcp://x:1883\ntopic: a/b+/c", WantErr: `mqtt.topic: "a/b+/c": '+' must be a whole level`},
		{Name: "negative backoff", Data: "url: tcp://x:1883\ntopic: t\nbackoff: {duration: -10000000000}", WantErr: "mqtt.backoff.duration: must not be negative, got -10s"},
		{Name: "negative jitter", Data: "url: tcp://x:1883\ntopic: t\nbackoff: {jitter: -1}", WantErr: "mqtt.backoff.jitter: must not be negative, got -1"},
		{Name: "QoS 3", Data: "url: tcp://x:1883\ntopic: t\nqos: 3", WantErr: "mqtt.qos: must be 0, 1 or 2, got 3"},
		{Name: "negative QoS", Data: "url: tcp://x:1883\ntopic: t\nqos: -1", WantErr: "mqtt.qos: must be 0, 1 or 2, got -1"},
		{Name: "persistent session without clientId", Data: "url: tcp://x:1883\ntopic: t\ncleanSession: false", WantErr: "mqtt.cleanSession: false needs a clientId"},
		{Name: "password alone", Data: "url: tcp://x:1883\ntopic: t\npassword: p", WantErr: "mqtt.username: is required with a password"},
		{Name: "password inline and from a secret", Data: "url: tcp://x:1883\ntopic: t\nusername: u\npassword: p\npasswordSecret: {name: c, key: password}", WantErr: "mqtt.passwordSecret: cannot be used with mqtt.password: give the credential inline or from a secret, not both"},
		{Name: "password secret alone", Data: "url: tcp://x:1883\ntopic: t\npasswordSecret: {name: c, key: password}", WantErr: "mqtt.username: is required with a password"},
		{Name: "secret and credentials in the URL", Data: "url: tcp://u:p@x:1883\ntopic: t\nusername: u\npasswordSecret: {name: c, key: password}", WantErr: "mqtt.url: holds credentials, which the client would use instead of passwordSecret: remove them from the URL"},
		{Name: "secret without key", Data: "url: tcp://x:1883\ntopic: t\nusername: u\npasswordSecret: {name: c}", WantErr: `mqtt.passwordSecret.key: required: the key in Secret "c"`},
		{Name: "secret key with a slash", Data: "url: tcp://x:1883\ntopic: t\nusername: u\npasswordSecret: {name: c, key: a/b}", WantErr: `mqtt.passwordSecret.key: "a/b" is not a Secret key`},
		{Name: "clientId a list", Data: "url: tcp://x:1883\ntopic: t\nclientId: [1]", WantErr: "mqtt: invalid configuration: clientId: want a string or a number"},
		{Name: "unknown field", Data: "url: tcp://x:1883\ntopic: t\nclient: x", WantErr: `mqtt: invalid configuration: unknown field "client"`},
		{
			Name:    "every problem at once",
			Data:    "url: http://x\nqos: 5\nbackoff: {steps: -1}",
			WantErr: `mqtt.url: "http://x" has scheme "http", want tcp, mqtt, ssl, tls, mqtts, ws or wss; mqtt.topic: is required; mqtt.backoff.steps: must not be negative, got -1; mqtt.qos: must be 0, 1 or 2, got 5`,
		},
	}
	testenv.ExpectParse(t, (&gateway{}).Parse, tests)
}

// The values v0.10 configs carry must mean what they meant, and the defaults must follow
// from what is set.
func TestConfigValues(t *testing.T) {
	tests := []struct {
		name, data   string
		clientID     string // empty: made up
		cleanSession bool
		qos          byte
		backoff      time.Duration
	}{
		{name: "numeric clientId", data: "clientId: 1234", clientID: "1234", qos: 1},
		{name: "string clientId", data: "clientId: '0042'", clientID: "0042", qos: 1},
		{name: "no clientId: clean session", data: "qos: 0", cleanSession: true, qos: 0},
		{name: "explicit clean session", data: "clientId: a\ncleanSession: true\nqos: 2", clientID: "a", cleanSession: true, qos: 2},
		{name: "nanoseconds", data: "backoff: {duration: 10000000000}", cleanSession: true, qos: 1, backoff: 10 * time.Second},
		{name: "Go duration", data: "backoff: {duration: 10s}", cleanSession: true, qos: 1, backoff: 10 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src, err := (&gateway{}).Parse("v", "url: tcp://x:1883\ntopic: t\n"+tc.data)
			if err != nil {
				t.Fatal(err)
			}
			s := src.(*source)
			if tc.clientID != "" && s.clientID != tc.clientID {
				t.Errorf("client ID = %q, want %q", s.clientID, tc.clientID)
			}
			if tc.clientID == "" && (!strings.HasPrefix(s.clientID, "eventgate-") || len(s.clientID) != 23) {
				t.Errorf("made-up client ID = %q, want eventgate- and 23 characters", s.clientID)
			}
			if got := s.cfg.cleanSession(); got != tc.cleanSession {
				t.Errorf("clean session = %t, want %t", got, tc.cleanSession)
			}
			if got := s.cfg.qos(); got != tc.qos {
				t.Errorf("QoS = %d, want %d", got, tc.qos)
			}
			if got := time.Duration(s.cfg.Backoff.Duration); got != tc.backoff {
				t.Errorf("backoff.duration = %s, want %s", got, tc.backoff)
			}
		})
	}
}

// The shipped examples must stay valid: they are what users copy.
func TestExamplesAreValid(t *testing.T) {
	sources := testenv.Examples(t, "../../../deploy/examples/mqtt", gatewayType)
	if len(sources) < 3 {
		t.Fatalf("example has %d event sources, want at least 3", len(sources))
	}
	for name, data := range sources {
		if _, err := (&gateway{}).Parse(name, data); err != nil {
			t.Errorf("example %q: %v", name, err)
		}
	}
}
