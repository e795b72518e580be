package main

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/eventgate/eventgate/pkg/config"
)

// Config is one webhook event source: every Argo Events v0.10 field, plus an auth token, a
// payload size limit, a bound on how long a request waits for the event stream and a
// header that gives the event its id.
type Config struct {
	// Endpoint is the URL path the source answers on ("/example"), as a request's path
	// reads decoded: no percent-escapes, and no empty, "." or ".." segments.
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
	// MaxPayloadSize bounds a request body in bytes (DefaultMaxPayloadSize when 0, at most
	// MaxMaxPayloadSize). A request whose event would be larger than a gateway-client
	// accepts, headers and escaping included, is answered 413 all the same.
	MaxPayloadSize int64 `json:"maxPayloadSize,omitempty"`
	// StreamTimeout bounds how long a request waits for the event stream to take its event
	// and, on an acknowledged (StreamEventSource) call, for the gateway-client's
	// acknowledgement, before it is answered 503 (DefaultStreamTimeout when 0).
	StreamTimeout config.Duration `json:"streamTimeout,omitempty"`
	// IDHeader names a request header whose value, when a request carries it, is the
	// event's id (the CloudEvent id), such as X-GitHub-Delivery or Idempotency-Key: a
	// caller that repeats it when it retries a request makes duplicates that a sensor can
	// recognise by source + id. The value must be unique per event among the gateway's
	// sources. Unset, or for a request without it, the id is random.
	IDHeader string `json:"idHeader,omitempty"`
}

const (
	// DefaultMaxPayloadSize is 1 MiB: larger than any webhook payload GitHub or Slack send.
	DefaultMaxPayloadSize = 1 << 20
	// DefaultStreamTimeout lets a caller retry well before its own timeout (often 30 s).
	DefaultStreamTimeout = 10 * time.Second
)

const (
	// grpcMaxMessage is the largest message a gRPC client receives unless told otherwise:
	// ours, v0.10's and those of every other language. A larger event ends the source's
	// whole stream (ResourceExhausted): the client restarts the source, every request
	// waiting on it is answered 503, and the caller's retry does it again.
	grpcMaxMessage = 4 << 20
	// eventFraming leaves room in a message for what eventSize does not count: the
	// protobuf tags and lengths, the time and the seq, under 100 bytes.
	eventFraming = 1 << 10
	// maxEventSize bounds an event as eventSize counts it; a request whose event would be
	// larger is answered 413 instead of being emitted.
	maxEventSize = grpcMaxMessage - eventFraming
	// MaxMaxPayloadSize is the largest maxPayloadSize: a larger body cannot fit in an event
	// even as JSON without headers, its most compact payload.
	MaxMaxPayloadSize = maxEventSize - int64(len(`{"header":{},"body":}`))
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
	idHeader      string // canonical; empty: random ids
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
	case strings.Contains(c.Endpoint, "%"):
		// Requests are matched on their decoded path: /my%20hook would never match.
		errs.Addf("webhook.endpoint", "%q must not contain %%: requests are matched on their decoded path, so a percent-escape never matches", c.Endpoint)
	case !normalPath(c.Endpoint):
		errs.Addf("webhook.endpoint", `%q must not contain empty, "." or ".." segments (//, /./, /../): clients and proxies normalise them away, so requests would not match`, c.Endpoint)
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
		// Trimmed as the file's is, and as the request's token is: a YAML block scalar
		// (authToken: |) ends with a newline, which no request could match.
		if token := strings.TrimSpace(c.AuthToken); token == "" {
			errs.Addf("webhook.authToken", "is empty once surrounding whitespace is trimmed")
		} else {
			s.token = []byte(token)
		}
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
	case c.MaxPayloadSize > MaxMaxPayloadSize:
		errs.Addf("webhook.maxPayloadSize", "%d is more than %d bytes, the largest body whose event fits in the 4 MiB a gateway-client's gRPC stream accepts",
			c.MaxPayloadSize, MaxMaxPayloadSize)
	}

	s.streamTimeout = time.Duration(c.StreamTimeout)
	switch {
	case s.streamTimeout < 0:
		errs.Addf("webhook.streamTimeout", "must be positive, got %s", s.streamTimeout)
	case s.streamTimeout == 0:
		s.streamTimeout = DefaultStreamTimeout
	}

	switch {
	case c.IDHeader == "":
	case !isToken(c.IDHeader):
		errs.Addf("webhook.idHeader", "%q is not an HTTP header name (RFC 7230 token)", c.IDHeader)
	case strings.EqualFold(c.IDHeader, "Authorization"):
		errs.Addf("webhook.idHeader", "Authorization carries the token, which must not travel on as the event id")
	default:
		s.idHeader = http.CanonicalHeaderKey(c.IDHeader)
	}

	if err := errs.Err(); err != nil {
		return nil, err
	}
	return s, nil
}

// normalPath reports whether path (starting with /) has no empty, "." or ".." segment:
// clients resolve "." and ".." before they send a request, and proxies often merge "//",
// so a request would not arrive with the path. A trailing / is sent as it is.
func normalPath(path string) bool {
	segs := strings.Split(path[1:], "/")
	for i, seg := range segs {
		if seg == "." || seg == ".." || seg == "" && i < len(segs)-1 {
			return false
		}
	}
	return true
}

// isToken reports whether s is an RFC 7230 token, the syntax of a method or header name.
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
