package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/eventgate/eventgate/pkg/config"
)

func TestConfigValidation(t *testing.T) {
	cert := newTestCert(t)
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	emptyFile := filepath.Join(t.TempDir(), "empty")
	if err := os.WriteFile(emptyFile, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(t.TempDir(), "missing.crt")

	tests := []struct {
		name, data string
		wantErr    string // empty: valid
		check      func(t *testing.T, s *settings)
	}{
		{name: "v0.10 string port", data: `{endpoint: /example, port: "12000", method: POST}`, check: func(t *testing.T, s *settings) {
			if s.port != 12000 || s.maxPayload != DefaultMaxPayloadSize || s.streamTimeout != DefaultStreamTimeout || s.tls != nil || s.token != nil {
				t.Errorf("settings = %+v", s)
			}
		}},
		{name: "number port", data: "endpoint: /a\nport: 8080\nmethod: PUT", check: func(t *testing.T, s *settings) {
			if s.port != 8080 {
				t.Errorf("port = %d", s.port)
			}
		}},
		{name: "v0.10 url", data: `{endpoint: /a, port: "1", method: POST, url: "http://gw.example.com:12000"}`},
		{name: "custom method", data: `{endpoint: /a, port: "1", method: PURGE}`},
		{name: "TLS with existing files", data: `{endpoint: /a, port: "1", method: POST, serverCertPath: "` + cert.certPath + `", serverKeyPath: "` + cert.keyPath + `"}`,
			check: func(t *testing.T, s *settings) {
				if s.tls == nil || s.tls.certPath != cert.certPath {
					t.Errorf("tls = %v", s.tls)
				}
			}},
		{name: "token file, newline trimmed", data: `{endpoint: /a, port: "1", method: POST, authTokenFile: "` + tokenFile + `"}`, check: func(t *testing.T, s *settings) {
			if string(s.token) != "s3cret" {
				t.Errorf("token = %q", s.token)
			}
		}},
		{name: "limits", data: `{endpoint: /a, port: "1", method: POST, maxPayloadSize: 10, streamTimeout: 250ms}`, check: func(t *testing.T, s *settings) {
			if s.maxPayload != 10 || s.streamTimeout.String() != "250ms" {
				t.Errorf("settings = %+v", s)
			}
		}},
		{name: "largest payload size", data: fmt.Sprintf(`{endpoint: /a, port: "1", method: POST, maxPayloadSize: %d}`, MaxMaxPayloadSize)},
		// A YAML block scalar ends with a newline, which no request's token could match.
		{name: "inline token, newline trimmed", data: "endpoint: /a\nport: 1\nmethod: POST\nauthToken: |\n  s3cret\n", check: func(t *testing.T, s *settings) {
			if string(s.token) != "s3cret" {
				t.Errorf("token = %q", s.token)
			}
		}},
		{name: "id header, canonical", data: `{endpoint: /a, port: "1", method: POST, idHeader: x-github-delivery}`, check: func(t *testing.T, s *settings) {
			if s.idHeader != "X-Github-Delivery" {
				t.Errorf("idHeader = %q", s.idHeader)
			}
		}},
		{name: "root endpoint", data: `{endpoint: /, port: "1", method: POST}`},
		{name: "endpoint with a trailing slash", data: `{endpoint: /hooks/, port: "1", method: POST}`},
		{name: "dots inside segments", data: `{endpoint: /a.b/..c/d.., port: "1", method: POST}`},

		{name: "nothing set", data: "url: http://x", wantErr: `webhook.endpoint: is required (a URL path such as /example); webhook.method: is required (POST, PUT, ...); webhook.port: is required (such as "12000")`},
		{name: "endpoint without slash", data: `{endpoint: example, port: "1", method: POST}`, wantErr: `webhook.endpoint: "example" must start with /`},
		{name: "endpoint with query", data: `{endpoint: "/a?b=c", port: "1", method: POST}`, wantErr: `webhook.endpoint: "/a?b=c" must be a plain path, without query, fragment or spaces`},
		{name: "endpoint with a percent-escape", data: `{endpoint: "/my%20hook", port: "1", method: POST}`,
			wantErr: `webhook.endpoint: "/my%20hook" must not contain %: requests are matched on their decoded path, so a percent-escape never matches`},
		{name: "endpoint with //", data: `{endpoint: "/a//b", port: "1", method: POST}`,
			wantErr: `webhook.endpoint: "/a//b" must not contain empty, "." or ".." segments (//, /./, /../): clients and proxies normalise them away, so requests would not match`},
		{name: "endpoint with /./", data: `{endpoint: "/a/./b", port: "1", method: POST}`, wantErr: `webhook.endpoint: "/a/./b" must not contain empty, "." or ".." segments`},
		{name: "endpoint with /../", data: `{endpoint: "/a/../b", port: "1", method: POST}`, wantErr: `webhook.endpoint: "/a/../b" must not contain empty, "." or ".." segments`},
		{name: "endpoint ending in /..", data: `{endpoint: "/a/..", port: "1", method: POST}`, wantErr: `webhook.endpoint: "/a/.." must not contain empty, "." or ".." segments`},
		{name: "endpoint //", data: `{endpoint: "//", port: "1", method: POST}`, wantErr: `webhook.endpoint: "//" must not contain empty, "." or ".." segments`},
		{name: "method with space", data: `{endpoint: /a, port: "1", method: "PO ST"}`, wantErr: `webhook.method: "PO ST" is not an HTTP method (RFC 7231 token)`},
		{name: "lower-case method", data: `{endpoint: /a, port: "1", method: post}`, wantErr: `webhook.method: "post": HTTP methods are case-sensitive, write "POST"`},
		{name: "port not a number", data: `{endpoint: /a, port: "http", method: POST}`, wantErr: `webhook.port: "http" is not a port number (1-65535)`},
		{name: "port out of range", data: `{endpoint: /a, port: 70000, method: POST}`, wantErr: `webhook.port: "70000" is not a port number (1-65535)`},
		{name: "port zero", data: `{endpoint: /a, port: "0", method: POST}`, wantErr: `webhook.port: "0" is not a port number (1-65535)`},
		{name: "port as a list", data: `{endpoint: /a, port: [1], method: POST}`, wantErr: `webhook.port: "[1]" is not a port number (1-65535)`},
		{name: "cert without key", data: `{endpoint: /a, port: "1", method: POST, serverCertPath: /x.crt}`, wantErr: "webhook.serverKeyPath: is required with serverCertPath"},
		{name: "key without cert", data: `{endpoint: /a, port: "1", method: POST, serverKeyPath: /x.key}`, wantErr: "webhook.serverCertPath: is required with serverKeyPath"},
		{name: "missing certificate file", data: `{endpoint: /a, port: "1", method: POST, serverCertPath: "` + missing + `", serverKeyPath: "` + cert.keyPath + `"}`,
			wantErr: "webhook.serverCertPath: cannot load the certificate and key: open " + missing + ": no such file or directory"},
		{name: "key is not a key", data: `{endpoint: /a, port: "1", method: POST, serverCertPath: "` + cert.certPath + `", serverKeyPath: "` + cert.certPath + `"}`,
			wantErr: "webhook.serverCertPath: cannot load the certificate and key: tls: "},
		{name: "token and token file", data: `{endpoint: /a, port: "1", method: POST, authToken: x, authTokenFile: "` + tokenFile + `"}`, wantErr: "webhook.authTokenFile: set authToken or authTokenFile, not both"},
		{name: "missing token file", data: `{endpoint: /a, port: "1", method: POST, authTokenFile: /nonexistent/token}`, wantErr: "webhook.authTokenFile: open /nonexistent/token: no such file or directory"},
		{name: "empty token file", data: `{endpoint: /a, port: "1", method: POST, authTokenFile: "` + emptyFile + `"}`, wantErr: "webhook.authTokenFile: " + emptyFile + " is empty"},
		{name: "inline token of whitespace", data: `{endpoint: /a, port: "1", method: POST, authToken: " \n"}`, wantErr: "webhook.authToken: is empty once surrounding whitespace is trimmed"},
		// A larger body's event could never reach a gateway-client: every request would be 413.
		{name: "payload size over what an event can carry", data: fmt.Sprintf(`{endpoint: /a, port: "1", method: POST, maxPayloadSize: %d}`, MaxMaxPayloadSize+1),
			wantErr: fmt.Sprintf("webhook.maxPayloadSize: %d is more than %d bytes, the largest body whose event fits in the 4 MiB a gateway-client's gRPC stream accepts", MaxMaxPayloadSize+1, MaxMaxPayloadSize)},
		{name: "payload size of 8 MiB", data: `{endpoint: /a, port: "1", method: POST, maxPayloadSize: 8388608}`, wantErr: "webhook.maxPayloadSize: 8388608 is more than "},
		{name: "id header not a header name", data: `{endpoint: /a, port: "1", method: POST, idHeader: "X Delivery"}`, wantErr: `webhook.idHeader: "X Delivery" is not an HTTP header name (RFC 7230 token)`},
		{name: "id header Authorization", data: `{endpoint: /a, port: "1", method: POST, idHeader: authorization}`, wantErr: "webhook.idHeader: Authorization carries the token, which must not travel on as the event id"},
		{name: "negative payload size", data: `{endpoint: /a, port: "1", method: POST, maxPayloadSize: -1}`, wantErr: "webhook.maxPayloadSize: must be positive (bytes), got -1"},
		{name: "negative stream timeout", data: `{endpoint: /a, port: "1", method: POST, streamTimeout: -1s}`, wantErr: "webhook.streamTimeout: must be positive, got -1s"},
		{name: "stream timeout not a duration", data: `{endpoint: /a, port: "1", method: POST, streamTimeout: soon}`, wantErr: `webhook: invalid configuration: "soon" is not a duration such as 10s, nor integer nanoseconds`},
		{name: "unknown field", data: `{endpoint: /a, port: "1", method: POST, hook: {}}`, wantErr: `webhook: invalid configuration: unknown field "hook"`},
		{name: "malformed YAML", data: "endpoint: [/a", wantErr: "webhook: invalid configuration: yaml: "},
		{name: "empty", data: " ", wantErr: "webhook: configuration is empty"},
	}
	gw := newGateway("127.0.0.1")
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src, err := gw.Parse(tc.name, tc.data)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				if tc.check != nil {
					tc.check(t, src.(*source).settings)
				}
				return
			}
			if err == nil || !strings.HasPrefix(err.Error(), tc.wantErr) {
				t.Fatalf("Parse error = %v, want prefix %q", err, tc.wantErr)
			}
		})
	}
}

// The shipped example must stay valid: it is what users copy. Its TLS source names files of
// a mounted secret; where they do not exist, it must be refused naming the missing file.
func TestExampleEventSourcesAreValid(t *testing.T) {
	manifest, err := os.ReadFile("../../../deploy/examples/webhook/event-source.yaml")
	if err != nil {
		t.Fatal(err)
	}
	sources, err := config.ConfigMapData(manifest)
	if err != nil {
		t.Fatal(err)
	}
	if len(sources) < 4 {
		t.Fatalf("example has %d event sources, want at least 4", len(sources))
	}
	gw := newGateway("127.0.0.1")
	for name, data := range sources {
		t.Run(name, func(t *testing.T) {
			var cfg Config
			if err := config.Decode(gatewayType, data, &cfg); err != nil {
				t.Fatal(err)
			}
			_, err := gw.Parse(name, data)
			if cfg.ServerCertPath == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if _, statErr := os.Stat(cfg.ServerCertPath); statErr == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			want := "webhook.serverCertPath: cannot load the certificate and key: open " + cfg.ServerCertPath + ": no such file or directory"
			if err == nil || err.Error() != want {
				t.Fatalf("Parse error = %v, want %q", err, want)
			}
		})
	}
}
