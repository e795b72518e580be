package main

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

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
