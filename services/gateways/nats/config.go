package main

import (
	"fmt"
	"strings"

	"github.com/eventgate/eventgate/pkg/config"
)

// Config is one NATS event source: every Argo Events v0.10 field (url, subject, backoff),
// plus jsonBody, TLS and authentication.
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
}

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
	return errs.Err()
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
