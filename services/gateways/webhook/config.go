package main

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/eventgate/eventgate/pkg/config"
)

// Config is one webhook event source: every Argo Events v0.10 field, plus an auth token, a
// payload size limit and a bound on how long a request waits for the event stream.
type Config struct {
	// Endpoint is the URL path the source answers on ("/example").
	Endpoint string `json:"endpoint"`
	// Method is the HTTP method it accepts, any RFC 7231 token ("POST", "PUT", "PURGE").
	Method string `json:"method"`
	// Port is where the HTTP server listens; v0.10 wrote it as a string ("12000"), a number
	// is accepted too. Sources on the same port share one server.
	Port Port `json:"port"`
	// URL is the address under which callers reach the source. v0.10 used it to register
	// webhooks with outside services; here it is informational (logged at start).
	URL string `json:"url,omitempty"`
	// ServerCertPath and ServerKeyPath serve the port over TLS (PEM files).
	ServerCertPath string `json:"serverCertPath,omitempty"`
	ServerKeyPath  string `json:"serverKeyPath,omitempty"`
	// AuthToken, or the content of AuthTokenFile (a mounted secret), is the Bearer token
	// every request must carry; no token means no check.
	AuthToken     string `json:"authToken,omitempty"`
	AuthTokenFile string `json:"authTokenFile,omitempty"`
	// MaxPayloadSize bounds a request body in bytes (DefaultMaxPayloadSize when 0).
	MaxPayloadSize int64 `json:"maxPayloadSize,omitempty"`
	// StreamTimeout bounds how long a request waits for the event stream to take its event
	// and, on an acknowledged (StreamEventSource) call, for the gateway-client's
	// acknowledgement, before it is answered 503 (DefaultStreamTimeout when 0).
	StreamTimeout config.Duration `json:"streamTimeout,omitempty"`
}

const (
	// DefaultMaxPayloadSize is 1 MiB: larger than any webhook payload GitHub or Slack send.
	DefaultMaxPayloadSize = 1 << 20
	// DefaultStreamTimeout lets a caller retry well before its own timeout (often 30 s).
	DefaultStreamTimeout = 10 * time.Second
)

// Port is a TCP port written as a string or a number; it keeps its text until Validate
// reads it, so a bad value is reported with its field path like any other problem.
type Port string

func (p *Port) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*p = Port(s)
		return nil
	}
	*p = Port(b)
	return nil
}

// settings is a validated Config, what a running source needs.
type settings struct {
	endpoint      string
	method        string
	port          int
	url           string
	tls           *tlsFiles // nil: plain HTTP
	token         []byte    // nil: no auth
	maxPayload    int64
	streamTimeout time.Duration
}

// tlsFiles is a port's certificate; two sources share a port only if they name the same files.
type tlsFiles struct {
	certPath, keyPath string
	cert              tls.Certificate
}

func (t *tlsFiles) same(o *tlsFiles) bool {
	if t == nil || o == nil {
		return t == o
	}
	return t.certPath == o.certPath && t.keyPath == o.keyPath
}

func (t *tlsFiles) String() string {
	if t == nil {
		return "plain HTTP"
	}
	return fmt.Sprintf("TLS with %s and %s", t.certPath, t.keyPath)
}

// compile validates c, reporting every problem with its field path.
func (c *Config) compile() (*settings, error) {
	var errs config.Errors
	s := &settings{endpoint: c.Endpoint, method: c.Method, url: c.URL}

	switch {
	case c.Endpoint == "":
		errs.Addf("webhook.endpoint", "is required (a URL path such as /example)")
	case !strings.HasPrefix(c.Endpoint, "/"):
		errs.Addf("webhook.endpoint", "%q must start with /", c.Endpoint)
	case strings.ContainsAny(c.Endpoint, "?# \t"):
		errs.Addf("webhook.endpoint", "%q must be a plain path, without query, fragment or spaces", c.Endpoint)
	}

	switch {
	case c.Method == "":
		errs.Addf("webhook.method", "is required (POST, PUT, ...)")
	case !isToken(c.Method):
		errs.Addf("webhook.method", "%q is not an HTTP method (RFC 7231 token)", c.Method)
	case c.Method != strings.ToUpper(c.Method) && isStandardMethod(strings.ToUpper(c.Method)):
		// Methods are case-sensitive: "post" would never match what clients send.
		errs.Addf("webhook.method", "%q: HTTP methods are case-sensitive, write %q", c.Method, strings.ToUpper(c.Method))
	}

	if c.Port == "" {
		errs.Addf("webhook.port", `is required (such as "12000")`)
	} else if n, err := strconv.Atoi(strings.TrimSpace(string(c.Port))); err != nil || n < 1 || n > 65535 {
		errs.Addf("webhook.port", "%q is not a port number (1-65535)", string(c.Port))
	} else {
		s.port = n
	}

	switch {
	case c.ServerCertPath == "" && c.ServerKeyPath == "":
	case c.ServerCertPath == "":
		errs.Addf("webhook.serverCertPath", "is required with serverKeyPath")
	case c.ServerKeyPath == "":
		errs.Addf("webhook.serverKeyPath", "is required with serverCertPath")
	default:
		// Loaded now, so that a missing file is a validation error and not a server that
		// cannot start.
		cert, err := tls.LoadX509KeyPair(c.ServerCertPath, c.ServerKeyPath)
		if err != nil {
			errs.Addf("webhook.serverCertPath", "cannot load the certificate and key: %v", err)
		} else {
			s.tls = &tlsFiles{certPath: filepath.Clean(c.ServerCertPath), keyPath: filepath.Clean(c.ServerKeyPath), cert: cert}
		}
	}

	switch {
	case c.AuthToken != "" && c.AuthTokenFile != "":
		errs.Addf("webhook.authTokenFile", "set authToken or authTokenFile, not both")
	case c.AuthToken != "":
		s.token = []byte(c.AuthToken)
	case c.AuthTokenFile != "":
		raw, err := os.ReadFile(c.AuthTokenFile)
		token := bytes.TrimSpace(raw) // secrets written by hand end with a newline
		switch {
		case err != nil:
			errs.Addf("webhook.authTokenFile", "%v", err)
		case len(token) == 0:
			errs.Addf("webhook.authTokenFile", "%s is empty", c.AuthTokenFile)
		default:
			s.token = token
		}
	}

	s.maxPayload = c.MaxPayloadSize
	switch {
	case c.MaxPayloadSize < 0:
		errs.Addf("webhook.maxPayloadSize", "must be positive (bytes), got %d", c.MaxPayloadSize)
	case c.MaxPayloadSize == 0:
		s.maxPayload = DefaultMaxPayloadSize
	}

	s.streamTimeout = time.Duration(c.StreamTimeout)
	switch {
	case s.streamTimeout < 0:
		errs.Addf("webhook.streamTimeout", "must be positive, got %s", s.streamTimeout)
	case s.streamTimeout == 0:
		s.streamTimeout = DefaultStreamTimeout
	}

	if err := errs.Err(); err != nil {
		return nil, err
	}
	return s, nil
}

// isToken reports whether s is an RFC 7230 token, the syntax of a method name.
func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0 {
			continue
		}
		return false
	}
	return s != ""
}

func isStandardMethod(m string) bool {
	switch m {
	case "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH":
		return true
	}
	return false
}
