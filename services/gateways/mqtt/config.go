package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"

	"github.com/eventgate/eventgate/pkg/config"
)

// Config is one MQTT event source: every Argo Events v0.10 field (url, topic, clientId,
// backoff), plus jsonBody, TLS, username/password, QoS and the session choice.
type Config struct {
	// URL is the broker, tcp://host:1883 (mqtt://, ssl://, tls://, mqtts://, ws://, wss://
	// too); several brokers, tried in turn, are separated by commas.
	URL string `json:"url"`
	// Topic is the topic filter to subscribe to; the wildcards + and # are allowed.
	Topic string `json:"topic"`
	// ClientID identifies the gateway to the broker. Given, it also keys a persistent
	// session (see CleanSession); empty, the source makes up one. A source does not start
	// while another source of the gateway uses the same clientId.
	ClientID ClientID `json:"clientId,omitempty"`
	// Backoff spaces the reconnects, for the life of the source (v0.10: first connect only).
	Backoff config.Backoff `json:"backoff,omitempty"`
	// JSONBody puts a JSON message body into the event as JSON rather than as base64 bytes.
	JSONBody bool `json:"jsonBody,omitempty"`
	// TLS configures a TLS connection (CA, client certificate); an ssl:// URL with no TLS
	// block uses the system's CAs. With a plaintext URL (tcp://, mqtt://, ws://), which
	// paho dials without TLS, it is an error.
	TLS *config.TLS `json:"tls,omitempty"`
	// Username and Password authenticate to the broker.
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
	// PasswordSecret reads the password from a Secret ({name, key}) instead, at each
	// connect.
	PasswordSecret *config.SecretRef `json:"passwordSecret,omitempty"`
	// QoS is the subscription's maximum quality of service, 0, 1 or 2; 1 when absent
	// (at least once: a message is acknowledged only after it was handed to the client).
	QoS *int `json:"qos,omitempty"`
	// CleanSession asks the broker to forget the session on disconnect. When absent it is
	// false with a clientId (the broker keeps the subscription and queues QoS 1 and 2
	// messages while the gateway is away) and true without one.
	CleanSession *bool `json:"cleanSession,omitempty"`
}

// ClientID is the MQTT client identifier. v0.10 examples wrote it as a YAML number
// (clientId: 1234); a number is read as its digits.
type ClientID string

func (c *ClientID) UnmarshalJSON(b []byte) error {
	if bytes.HasPrefix(b, []byte(`"`)) {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*c = ClientID(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("clientId: want a string or a number, got %s", b)
	}
	*c = ClientID(n.String())
	return nil
}

// defaultQoS is at least once.
const defaultQoS = 1

// urlSchemes are those paho dials; urlSchemeAliases are other spellings paho takes, which
// errors need not name.
var (
	urlSchemes       = []string{"tcp", "mqtt", "ssl", "tls", "mqtts", "ws", "wss"}
	urlSchemeAliases = []string{"mqtt+ssl", "tcps"}
)

// Validate reports every problem of c with its field path.
func (c *Config) Validate() error {
	var errs config.Errors
	config.CheckList(&errs, "mqtt.url", c.URL, "tcp://mqtt.argo-events:1883", func(raw string) error {
		return config.CheckURL(raw, urlSchemes, urlSchemeAliases...)
	})
	if err := checkTopic(c.Topic); err != nil {
		errs.Addf("mqtt.topic", "%v", err)
	}
	if len(c.ClientID) > 65535 {
		errs.Addf("mqtt.clientId", "is %d bytes long, MQTT allows 65535", len(c.ClientID))
	}
	c.Backoff.Validate(&errs, "mqtt.backoff")
	c.TLS.Validate(&errs, "mqtt.tls")
	if c.TLS != nil {
		checkTLSSchemes(&errs, c.brokers())
	}
	config.CheckCredential(&errs, "mqtt.password", c.Password != "", "mqtt.passwordSecret", c.PasswordSecret)
	if c.PasswordSecret != nil && config.URLsHaveUserInfo(c.URL) {
		errs.Addf("mqtt.url", "holds credentials, which the client would use instead of passwordSecret: remove them from the URL")
	}
	if (c.Password != "" || c.PasswordSecret != nil) && c.Username == "" {
		errs.Addf("mqtt.username", "is required with a password")
	}
	if c.QoS != nil && (*c.QoS < 0 || *c.QoS > 2) {
		errs.Addf("mqtt.qos", "must be 0, 1 or 2, got %d", *c.QoS)
	}
	if c.CleanSession != nil && !*c.CleanSession && c.ClientID == "" {
		errs.Addf("mqtt.cleanSession", "false needs a clientId: a made-up one changes at every start, so the broker would keep sessions that nobody resumes")
	}
	return errs.Err()
}

// tlsSchemeFor is the TLS scheme to use instead of each plaintext one: paho dials a
// tcp://, mqtt:// or ws:// URL without TLS, whatever the TLS configuration.
var tlsSchemeFor = map[string]string{"tcp": "ssl:// (or mqtts://)", "mqtt": "ssl:// (or mqtts://)", "ws": "wss://"}

// checkTLSSchemes reports the brokers of a source with a TLS block whose URL would ignore
// it. URLs that are not URLs, or of an unknown scheme, are mqtt.url's errors.
func checkTLSSchemes(errs *config.Errors, brokers []string) {
	for _, raw := range brokers {
		u, err := url.Parse(raw)
		if err != nil {
			continue
		}
		if use, plain := tlsSchemeFor[u.Scheme]; plain {
			errs.Addf("mqtt.tls", "is set but url %q is not a TLS scheme (%s:// connects without TLS): use %s", config.RedactURLs(raw), u.Scheme, use)
		}
	}
}

// qos is the subscription's QoS.
func (c *Config) qos() byte {
	if c.QoS == nil {
		return defaultQoS
	}
	return byte(*c.QoS)
}

// cleanSession is the session choice, with its default.
func (c *Config) cleanSession() bool {
	if c.CleanSession == nil {
		return c.ClientID == ""
	}
	return *c.CleanSession
}

// brokers splits the comma-separated URL list.
func (c *Config) brokers() []string { return config.List(c.URL) }

// checkTopic accepts MQTT topic filters: '#' only as the whole last level, '+' only as a
// whole level, no NUL character.
func checkTopic(s string) error {
	if s == "" {
		return fmt.Errorf("is required")
	}
	if strings.ContainsRune(s, 0) {
		return fmt.Errorf("%q must not contain a NUL character", s)
	}
	levels := strings.Split(s, "/")
	for i, level := range levels {
		switch {
		case strings.Contains(level, "#") && (level != "#" || i != len(levels)-1):
			return fmt.Errorf("%q: '#' must be the whole last level", s)
		case strings.Contains(level, "+") && level != "+":
			return fmt.Errorf("%q: '+' must be a whole level", s)
		}
	}
	return nil
}
