package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/eventgate/eventgate/pkg/config"
	"github.com/eventgate/eventgate/pkg/secret"
	"github.com/eventgate/eventgate/pkg/testenv"
)

// creds are the secret references most cases use.
const creds = "\naccessKey: {name: minio, key: accesskey}\nsecretKey: {name: minio, key: secretkey}"

func TestConfigValidation(t *testing.T) {
	ca := filepath.Join(t.TempDir(), "ca.pem")
	_, caPath := testenv.LoopbackCert(t)
	if pem, err := os.ReadFile(caPath); err != nil {
		t.Fatal(err)
	} else if err := os.WriteFile(ca, pem, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []testenv.ParseCase{ // WantErr empty: valid
		{Name: "v0.10 as written", Data: `
bucket:
  name: input
endpoint: minio-service.argo-events:9000
events:
 - s3:ObjectCreated:Put
 - s3:ObjectRemoved:Delete
filter:
  prefix: ""
  suffix: ""
insecure: true
accessKey:
  key: accesskey
  name: artifacts-minio
secretKey:
  key: secretkey
  name: artifacts-minio`},
		{Name: "bucket key and region (v0.10)", Data: "bucket: {name: input, key: hello.txt}\nendpoint: minio:9000\nregion: us-east-1" + creds},
		{Name: "no events: all", Data: "bucket: {name: input}\nendpoint: minio:9000" + creds},
		{Name: "wildcards", Data: "bucket: {name: inbox}\nendpoint: minio:9000\nevents: ['s3:ObjectCreated:*', 's3:ObjectRemoved:*', 's3:ObjectAccessed:*']" + creds},
		{Name: "filter", Data: "bucket: {name: inbox}\nendpoint: minio:9000\nfilter: {prefix: images/, suffix: .png}" + creds},
		{Name: "endpoint without port", Data: "bucket: {name: inbox}\nendpoint: s3.example.com" + creds},
		{Name: "IPv6 endpoint", Data: "bucket: {name: inbox}\nendpoint: '[::1]:9000'" + creds},
		{Name: "filter with dots", Data: "bucket: {name: inbox}\nendpoint: minio:9000\nfilter: {prefix: ..in/a.b/, suffix: .tar.gz}" + creds},
		{Name: "optional secret reference", Data: "bucket: {name: inbox}\nendpoint: minio:9000\naccessKey: {name: minio, key: a, optional: true}\nsecretKey: {name: minio, key: s}"},
		{Name: "caCertPath and backoff", Data: "bucket: {name: inbox}\nendpoint: minio:9000\ncaCertPath: " + ca + "\nbackoff: {duration: 10000000000, factor: 2, steps: 5}" + creds},

		{Name: "empty bucket", Data: "bucket: {name: ''}\nendpoint: minio:9000" + creds, WantErr: "artifact.bucket.name: is required"},
		{Name: "no bucket", Data: "endpoint: minio:9000" + creds, WantErr: "artifact.bucket.name: is required"},
		{Name: "bad bucket name", Data: "bucket: {name: In_Put}\nendpoint: minio:9000" + creds, WantErr: `artifact.bucket.name: "In_Put": Bucket name contains invalid characters`},
		{Name: "unknown event", Data: "bucket: {name: inbox}\nendpoint: minio:9000\nevents: ['s3:ObjectCreated:Put', 's3:ObjectCreated']" + creds, WantErr: `artifact.events[1]: unknown S3 event "s3:ObjectCreated" (e.g. s3:ObjectCreated:*, s3:ObjectCreated:Put, s3:ObjectRemoved:Delete)`},
		{Name: "missing endpoint", Data: "bucket: {name: inbox}" + creds, WantErr: "artifact.endpoint: is required: host:port of the S3 server, without a scheme"},
		{Name: "endpoint with scheme", Data: "bucket: {name: inbox}\nendpoint: http://minio:9000" + creds, WantErr: `artifact.endpoint: "http://minio:9000" has a scheme: give host:port, and insecure: true for plain HTTP`},
		{Name: "endpoint with path", Data: "bucket: {name: inbox}\nendpoint: minio:9000/x" + creds, WantErr: `artifact.endpoint: "minio:9000/x" is not host:port`},
		{Name: "endpoint with bad port", Data: "bucket: {name: inbox}\nendpoint: minio:port" + creds, WantErr: `artifact.endpoint: "minio:port" is not host:port`},
		{Name: "endpoint host ending in a hyphen", Data: "bucket: {name: inbox}\nendpoint: minio-:9000" + creds, WantErr: `artifact.endpoint: "minio-:9000": "minio-" is neither an IP address nor a domain name`},
		{Name: "filter prefix with a dot-dot segment", Data: "bucket: {name: inbox}\nendpoint: minio:9000\nfilter: {prefix: in/../x/}" + creds, WantErr: `artifact.filter.prefix: "in/../x/" has a ".." path segment, which MinIO refuses`},
		{Name: "filter suffix with a backslash", Data: "bucket: {name: inbox}\nendpoint: minio:9000\nfilter: {suffix: 'a\\b'}" + creds, WantErr: `artifact.filter.suffix: "a\\b" has a backslash, which MinIO refuses`},
		{Name: "secret reference without key", Data: "bucket: {name: inbox}\nendpoint: minio:9000\naccessKey: {name: minio}\nsecretKey: {name: minio, key: s}", WantErr: `artifact.accessKey.key: required: the key in Secret "minio"`},
		{Name: "secret reference without name", Data: "bucket: {name: inbox}\nendpoint: minio:9000\naccessKey: {name: minio, key: a}\nsecretKey: {key: s}", WantErr: "artifact.secretKey.name: required: the Secret's name"},
		{Name: "no credentials", Data: "bucket: {name: inbox}\nendpoint: minio:9000", WantErr: "artifact.accessKey: is required: {name, key} of a Secret; artifact.secretKey: is required: {name, key} of a Secret"},
		{Name: "inline secret value", Data: "bucket: {name: inbox}\nendpoint: minio:9000\naccessKey: AKIA\nsecretKey: {name: minio, key: s}", WantErr: "artifact: invalid configuration"},
		{Name: "missing CA file", Data: "bucket: {name: inbox}\nendpoint: minio:9000\ncaCertPath: /nonexistent/ca.pem" + creds, WantErr: "artifact.caCertPath: read CA certificate: open /nonexistent/ca.pem"},
		{Name: "CA with insecure", Data: "bucket: {name: inbox}\nendpoint: minio:9000\ninsecure: true\ncaCertPath: " + ca + creds, WantErr: "artifact.caCertPath: is for TLS, but insecure is true (plain HTTP)"},
		{Name: "negative backoff", Data: "bucket: {name: inbox}\nendpoint: minio:9000\nbackoff: {duration: -1s}" + creds, WantErr: "artifact.backoff.duration: must not be negative, got -1s"},
		{Name: "unknown field", Data: "bucket: {name: inbox}\nendpoint: minio:9000\nevent: [x]" + creds, WantErr: `artifact: invalid configuration: unknown field "event"`},
		{Name: "empty", Data: "", WantErr: "artifact: configuration is empty"},
		{
			Name:    "every problem at once",
			Data:    "bucket: {name: ''}\nendpoint: 'https://x'\nevents: [put]\naccessKey: {name: m}",
			WantErr: `artifact.bucket.name: is required; artifact.endpoint: "https://x" has a scheme: give host:port, and insecure: true for plain HTTP; artifact.events[0]: unknown S3 event "put" (e.g. s3:ObjectCreated:*, s3:ObjectCreated:Put, s3:ObjectRemoved:Delete); artifact.accessKey.key: required: the key in Secret "m"; artifact.secretKey: is required: {name, key} of a Secret`,
		},
	}
	testenv.ExpectParse(t, newGateway(secret.Dir(t.TempDir())).Parse, tests)
}

// The shipped examples must stay valid: they are what users copy.
func TestExamplesAreValid(t *testing.T) {
	sources := testenv.Examples(t, "../../../deploy/examples/artifact", gatewayType)
	if len(sources) < 3 {
		t.Fatalf("example has %d event sources, want at least 3", len(sources))
	}
	for name, data := range sources {
		if _, err := newGateway(secret.Dir(t.TempDir())).Parse(name, data); err != nil {
			t.Errorf("example %q: %v", name, err)
		}
	}
}

// No events listens to all: MinIO matches only the names it is given, so "all" must be
// every family's wildcard plus the names of families that have none.
func TestAllEvents(t *testing.T) {
	got := (&Config{}).events()
	for _, want := range []string{"s3:ObjectCreated:*", "s3:ObjectRemoved:*", "s3:ObjectAccessed:*", "s3:LifecycleDelMarkerExpiration:Delete", "s3:Scanner:ManyVersions"} {
		if !slices.Contains(got, want) {
			t.Errorf("events() = %v, lacks %s", got, want)
		}
	}
	for _, covered := range []string{"s3:ObjectCreated:Put", "s3:ObjectRemoved:Delete"} {
		if slices.Contains(got, covered) {
			t.Errorf("events() = %v, has %s, which a wildcard covers", got, covered)
		}
	}
	if got := (&Config{Events: []string{"s3:ObjectCreated:Put"}}).events(); !slices.Equal(got, []string{"s3:ObjectCreated:Put"}) {
		t.Errorf("events() = %v, want the configured ones", got)
	}
}

// A filter's prefix and suffix follow MinIO's rules: its listen refuses any other, at every
// attempt, so validation must refuse them first.
func TestFilterValueRules(t *testing.T) {
	for _, v := range []string{"", "in/", ".csv", "..in/", "a..b", "in/.hidden/", "x./", "dir/", strings.Repeat("a", 1024), "é/"} {
		if err := checkFilterValue(v); err != nil {
			t.Errorf("checkFilterValue(%q) = %v, want accepted", v, err)
		}
	}
	for v, want := range map[string]string{
		".":                       `"." has a "." path segment`,
		"./in":                    `"./in" has a "." path segment`,
		"in/./x":                  `"in/./x" has a "." path segment`,
		"in/..":                   `"in/.." has a ".." path segment`,
		`in\x`:                    `"in\\x" has a backslash`,
		"in/\xff":                 `"in/\xff" is not valid UTF-8`,
		strings.Repeat("a", 1025): "is 1025 bytes long, MinIO takes at most 1024",
		strings.Repeat("é", 513):  "is 1026 bytes long, MinIO takes at most 1024",
	} {
		if err := checkFilterValue(v); err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("checkFilterValue(%.20q...) = %v, want %q...", v, err, want)
		}
	}
	// The field paths.
	c := Config{Filter: &Filter{Prefix: "a/../b", Suffix: `\`}}
	err := c.Validate()
	for _, want := range []string{`artifact.filter.prefix: "a/../b" has a ".." path segment`, `artifact.filter.suffix: "\\" has a backslash`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want %q in it", err, want)
		}
	}
}

// Validation accepts an endpoint's host when minio-go does: one it refuses would fail every
// listen.
func TestEndpointHostAsMinioGoTakesIt(t *testing.T) {
	for _, e := range []string{
		"minio:9000", "minio", "minio.argo-events.svc:9000", "minio_x.local:9000", "10.0.0.1:9000", "[::1]:9000",
		"-minio:9000", "minio-:9000", "_minio:9000", "minio_:9000", "a.b-:9000", ".minio:9000", "[fe80::1%25eth0]:9000",
	} {
		c := Config{Bucket: Bucket{Name: "inbox"}, Endpoint: e, AccessKey: &config.SecretRef{Name: "m", Key: "a"}, SecretKey: &config.SecretRef{Name: "m", Key: "s"}}
		verr := c.Validate()
		_, nerr := minio.New(e, &minio.Options{Creds: credentials.NewStaticV4("a", "s", "")})
		if (verr == nil) != (nerr == nil) {
			t.Errorf("endpoint %q: Validate() = %v, but minio.New: %v", e, verr, nerr)
		}
	}
}
