package main

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/eventgate/eventgate/pkg/config"
)

// Config is one NATS event source: every Argo Events v0.10 field (url, subject, backoff),
// plus jsonBody, TLS, authentication and JetStream.
type Config struct {
	// URL is the NATS server, nats://host:4222 (tls://, ws:// and wss:// too); several
	// servers of one cluster are separated by commas. Credentials may sit in the URL
	// (nats://user:password@host:4222), as NATS clients allow.
	URL string `json:"url"`
	// Subject is what to subscribe to; the wildcards * and > are allowed.
	Subject string `json:"subject"`
	// Backoff spaces the reconnects, for the life of the source (v0.10: first connect only).
	Backoff config.Backoff `json:"backoff,omitempty"`
	// JSONBody puts a JSON message body into the event as JSON rather than as base64 bytes.
	JSONBody bool `json:"jsonBody,omitempty"`
	// TLS configures a TLS connection (CA, client certificate); a tls:// URL with no TLS
	// block uses the system's CAs.
	TLS *config.TLS `json:"tls,omitempty"`
	// Username and Password, or Token, authenticate to the server.
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
	Token    string `json:"token,omitempty"`
	// PasswordSecret and TokenSecret read the password or the token from a Secret
	// ({name, key}) instead, at each connect; each replaces its inline field.
	PasswordSecret *config.SecretRef `json:"passwordSecret,omitempty"`
	TokenSecret    *config.SecretRef `json:"tokenSecret,omitempty"`
	// JetStream consumes subject from a JetStream stream instead of subscribing with core
	// NATS: at least once instead of at most once.
	JetStream *JetStream `json:"jetStream,omitempty"`
}

// JetStream reads a stream through a durable pull consumer with explicit acks: a message
// is acknowledged only once the client acknowledged its event as delivered (or dropped),
// and anything else is redelivered, also after a gateway or broker restart. The source's
// subject is the consumer's filter subject.
type JetStream struct {
	// Stream is the stream to read; it must exist (the gateway does not create streams, whose
	// subjects, limits and storage are the operator's choice).
	Stream string `json:"stream"`
	// Consumer is the durable consumer's name: created on the stream if missing, its
	// configuration set from this block if it exists. It remembers what was acknowledged,
	// so a restarted source resumes where it stopped. Two sources with one consumer share
	// its messages between them, so they must have the same subject and deliverPolicy: an
	// existing consumer whose filter subject or deliver policy differ from the source's is
	// refused (the source retries with its backoff), and left as it is; ackWait and
	// maxAckPending are set from the source that connected last.
	Consumer string `json:"consumer"`
	// DeliverPolicy is where a new consumer starts: all (the default: every message the
	// stream holds), new (those published from now on) or last (the last message, then
	// new ones). It cannot be changed on an existing consumer.
	DeliverPolicy string `json:"deliverPolicy,omitempty"`
	// AckWait is how long the server waits for an acknowledgement before redelivering
	// (default 30s). Events the client holds are kept from expiring by progress
	// acknowledgements, so it bounds how long a vanished gateway delays redelivery, not
	// how long a delivery may take.
	AckWait config.Duration `json:"ackWait,omitempty"`
	// MaxAckPending is the most messages the consumer has delivered and not yet had
	// acknowledged (default: the server's, 1000).
	MaxAckPending int `json:"maxAckPending,omitempty"`
}

// deliverPolicies are JetStream.DeliverPolicy's values.
var deliverPolicies = []string{"all", "new", "last"}

// defaultAckWait is JetStream.AckWait's default, the server's own.
const defaultAckWait = 30 * time.Second

// urlSchemes are those nats.go dials.
var urlSchemes = []string{"nats", "tls", "ws", "wss"}

// Validate reports every problem of c with its field path.
func (c *Config) Validate() error {
	var errs config.Errors
	config.CheckList(&errs, "nats.url", c.URL, "nats://nats.argo-events:4222", checkURL)
	if err := checkSubject(c.Subject); err != nil {
		errs.Addf("nats.subject", "%v", err)
	}
	c.Backoff.Validate(&errs, "nats.backoff")
	c.TLS.Validate(&errs, "nats.tls")
	config.CheckCredential(&errs, "nats.token", c.Token != "", "nats.tokenSecret", c.TokenSecret)
	config.CheckCredential(&errs, "nats.password", c.Password != "", "nats.passwordSecret", c.PasswordSecret)
	if (c.TokenSecret != nil || c.PasswordSecret != nil) && config.URLsHaveUserInfo(c.URL) {
		errs.Addf("nats.url", "holds credentials, which the client would use instead of tokenSecret or passwordSecret: remove them from the URL")
	}
	hasToken := c.Token != "" || c.TokenSecret != nil
	hasPassword := c.Password != "" || c.PasswordSecret != nil
	switch {
	case hasToken && (c.Username != "" || hasPassword):
		errs.Addf("nats.token", "use either a token or a username and password, not both")
	case hasPassword && c.Username == "":
		errs.Addf("nats.username", "is required with a password")
	}
	c.JetStream.validate(&errs, "nats.jetStream")
	return errs.Err()
}

// validate records every problem of j, with paths under path.
func (j *JetStream) validate(errs *config.Errors, path string) {
	if j == nil {
		return
	}
	if err := checkName(j.Stream); err != nil {
		errs.Addf(path+".stream", "%v", err)
	}
	if err := checkName(j.Consumer); err != nil {
		errs.Addf(path+".consumer", "%v (the durable consumer's name)", err)
	}
	if j.DeliverPolicy != "" && !slices.Contains(deliverPolicies, j.DeliverPolicy) {
		errs.Addf(path+".deliverPolicy", "%q is not one of all, new, last", j.DeliverPolicy)
	}
	if j.AckWait < 0 {
		errs.Addf(path+".ackWait", "must not be negative, got %s", time.Duration(j.AckWait))
	}
	if j.MaxAckPending < 0 {
		errs.Addf(path+".maxAckPending", "must not be negative, got %d (0: the server's default)", j.MaxAckPending)
	}
}

// maxNameLen is the longest stream or consumer name a server accepts.
const maxNameLen = 255

// checkName applies the server's rule for stream and consumer names: names are tokens of
// subjects and file names, so no dots, wildcards, white space or path separators.
func checkName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("is required")
	case len(name) > maxNameLen:
		return fmt.Errorf("is %d characters long, at most %d are allowed", len(name), maxNameLen)
	case strings.ContainsAny(name, " \t\r\n\f.*>/\\"):
		return fmt.Errorf("%q must not contain '.', '*', '>', '/', '\\' or white space", name)
	}
	return nil
}

// servers splits the comma-separated URL list, as nats.Connect does.
func (c *Config) servers() []string { return config.List(c.URL) }

func checkURL(raw string) error {
	if raw != "" && !strings.Contains(raw, "://") {
		// nats.go reads host:port as nats://host:port.
		raw = "nats://" + raw
	}
	return config.CheckURL(raw, urlSchemes)
}

// checkSubject accepts what a NATS server accepts in a SUB: dot-separated non-empty tokens
// without white space, '>' only as the last token.
func checkSubject(s string) error {
	if s == "" {
		return fmt.Errorf("is required")
	}
	if strings.ContainsAny(s, " \t\r\n") {
		return fmt.Errorf("%q must not contain white space", s)
	}
	tokens := strings.Split(s, ".")
	for i, tok := range tokens {
		switch {
		case tok == "":
			return fmt.Errorf("%q has an empty token", s)
		case tok == ">" && i != len(tokens)-1:
			return fmt.Errorf("%q has '>' before its last token", s)
		}
	}
	return nil
}
