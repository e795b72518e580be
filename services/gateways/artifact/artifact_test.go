package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/notification"

	"github.com/eventgate/eventgate/pkg/secret"
	"github.com/eventgate/eventgate/pkg/server"
	"github.com/eventgate/eventgate/pkg/testenv"
	"github.com/eventgate/eventgate/pkg/testenv/minioenv"
	"github.com/eventgate/eventgate/protos/gateways"
)

// runAsGateway makes this test binary the artifact gateway process when a test re-executes
// it: main runs as it does in a pod, with the environment the test gives it.
const runAsGateway = "EVENTGATE_TEST_RUN_AS_ARTIFACT_GATEWAY"

func TestMain(m *testing.M) { os.Exit(testenv.MainOrTests(m, runAsGateway, main, minioenv.Run)) }

// fastBackoff keeps the tests' reconnects quick.
const fastBackoff = "backoff: {duration: 50ms, factor: 1}"

// secretsDir is a folder of secrets as a mounted Secret volume looks: minio/accesskey and
// minio/secretkey hold the given credentials.
func secretsDir(t testing.TB, accessKey, secretKey string) testenv.SecretsDir {
	t.Helper()
	dir := testenv.NewSecretsDir(t)
	dir.Put(t, "minio", "accesskey", accessKey)
	dir.Put(t, "minio", "secretkey", secretKey)
	return dir
}

// sourceData is an event source on bucket of srv with the secrets of secretsDir, plus extra
// YAML lines.
func sourceData(srv *minioenv.Server, bucket string, extra ...string) string {
	return sourceDataAt(srv.Endpoint, bucket, extra...)
}

// sourceDataAt is sourceData with endpoint (a proxy's) in place of the server's.
func sourceDataAt(endpoint, bucket string, extra ...string) string {
	return strings.Join(append([]string{
		"bucket: {name: " + bucket + "}",
		"endpoint: " + endpoint,
		"insecure: true",
		"accessKey: {name: minio, key: accesskey}",
		"secretKey: {name: minio, key: secretkey}",
		fastBackoff,
	}, extra...), "\n")
}

// startSource serves a gateway whose secrets are in dir and opens a source on it; the
// stream is read ahead of the test, as MinIO's listen drops what a slow listener leaves.
func startSource(t testing.TB, dir testenv.SecretsDir, data string, opts ...server.Option) *testenv.Stream {
	t.Helper()
	return startGatewaySource(t, newGateway(secret.Dir(string(dir))), data, opts...)
}

// startGatewaySource is startSource on gw, a gateway the test set up.
func startGatewaySource(t testing.TB, gw gateway, data string, opts ...server.Option) *testenv.Stream {
	t.Helper()
	srv := testenv.StartGateway(t, gw, opts...)
	return testenv.OpenBufferedStream(t, srv.Client, &gateways.EventSource{Name: "test", Data: data}, 4096)
}

// next is the next event's record, or a test failure after timeout.
func next(t testing.TB, s *testenv.Stream, timeout time.Duration) payload {
	t.Helper()
	return testenv.NextJSON[payload](t, s, timeout)
}

// key is the record's object key, unescaped (S3 records carry it URL-encoded).
func key(t testing.TB, r payload) string {
	t.Helper()
	k, err := url.QueryUnescape(r.S3.Object.Key)
	if err != nil {
		t.Fatalf("object key %q: %v", r.S3.Object.Key, err)
	}
	return k
}

func put(t testing.TB, c *minio.Client, bucket, name string) {
	t.Helper()
	body := []byte("content of " + name)
	if _, err := c.PutObject(context.Background(), bucket, name, bytes.NewReader(body), int64(len(body)), minio.PutObjectOptions{ContentType: "text/plain"}); err != nil {
		t.Fatalf("put %s: %v", name, err)
	}
}

func remove(t testing.TB, c *minio.Client, bucket, name string) {
	t.Helper()
	if err := c.RemoveObject(context.Background(), bucket, name, minio.RemoveObjectOptions{}); err != nil {
		t.Fatalf("remove %s: %v", name, err)
	}
}

// waitListening puts probe objects (named by probe(i)) until one's event arrives, which
// proves the source listens (MinIO keeps nothing for a listener that is not there yet), then
// reads the events of the probes until the last one, so the stream holds nothing more.
func waitListening(t testing.TB, c *minio.Client, bucket string, s *testenv.Stream, probe func(i int) string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for i := 0; ; i++ {
		if time.Now().After(deadline) {
			t.Fatal("source not listening within 30s")
		}
		put(t, c, bucket, probe(i))
		ev, err := s.TryNext(100 * time.Millisecond)
		if errors.Is(err, testenv.ErrNoEvent) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		r := testenv.DecodeJSON[payload](t, ev)
		for key(t, r) != probe(i) {
			r = next(t, s, 10*time.Second)
		}
		return
	}
}

func probes(prefix string) func(int) string {
	return func(i int) string { return prefix + "probe-" + strconv.Itoa(i) }
}

// expect reads one event per want ("eventName key"), in order.
func expect(t testing.TB, s *testenv.Stream, want ...string) {
	t.Helper()
	for i, w := range want {
		r := next(t, s, 10*time.Second)
		if got := r.EventName + " " + key(t, r); got != w {
			t.Fatalf("event %d = %q, want %q", i, got, w)
		}
	}
	if ev := s.Queued(); ev != nil {
		t.Fatalf("an event beyond the %d expected: %s", len(want), ev.GetPayload())
	}
}

func TestPutAndDeleteEvents(t *testing.T) {
	srv := minioenv.Shared(t)
	srv.MakeBucket(t, "put-delete")
	c := srv.Client()
	s := startSource(t, secretsDir(t, minioenv.AccessKey, minioenv.SecretKey),
		sourceData(srv, "put-delete", "events: ['s3:ObjectCreated:Put', 's3:ObjectRemoved:Delete']"))
	waitListening(t, c, "put-delete", s, probes(""))

	var want []string
	for i := range 5 {
		put(t, c, "put-delete", "dir/object-"+strconv.Itoa(i))
		want = append(want, "s3:ObjectCreated:Put dir/object-"+strconv.Itoa(i))
	}
	for i := range 5 {
		remove(t, c, "put-delete", "dir/object-"+strconv.Itoa(i))
		want = append(want, "s3:ObjectRemoved:Delete dir/object-"+strconv.Itoa(i))
	}
	expect(t, s, want...)
}

func TestRecordFields(t *testing.T) {
	srv := minioenv.Shared(t)
	srv.MakeBucket(t, "fields")
	c := srv.Client()
	s := startSource(t, secretsDir(t, minioenv.AccessKey, minioenv.SecretKey), sourceData(srv, "fields"))
	waitListening(t, c, "fields", s, probes(""))

	put(t, c, "fields", "a b/c.txt")
	r := next(t, s, 10*time.Second)
	if r.EventName != "s3:ObjectCreated:Put" || key(t, r) != "a b/c.txt" || r.S3.Bucket.Name != "fields" ||
		r.S3.Object.Size != int64(len("content of a b/c.txt")) || r.S3.Object.ContentType != "text/plain" || r.S3.Object.ETag == "" {
		t.Errorf("record = %+v", r)
	}
	if _, err := time.Parse(time.RFC3339Nano, r.EventTime); err != nil {
		t.Errorf("eventTime %q: %v", r.EventTime, err)
	}
}

func TestFilter(t *testing.T) {
	srv := minioenv.Shared(t)
	srv.MakeBucket(t, "filtered")
	c := srv.Client()
	s := startSource(t, secretsDir(t, minioenv.AccessKey, minioenv.SecretKey),
		sourceData(srv, "filtered", "events: ['s3:ObjectCreated:*']", "filter: {prefix: in/, suffix: .csv}"))
	waitListening(t, c, "filtered", s, func(i int) string { return "in/probe-" + strconv.Itoa(i) + ".csv" })

	for _, name := range []string{"in/a.csv", "in/b.txt", "out/c.csv", "in.csv", "x/in/d.csv", "in/sub/e.csv"} {
		put(t, c, "filtered", name)
	}
	remove(t, c, "filtered", "in/a.csv") // not an event asked for
	put(t, c, "filtered", "in/last.csv")
	expect(t, s, "s3:ObjectCreated:Put in/a.csv", "s3:ObjectCreated:Put in/sub/e.csv", "s3:ObjectCreated:Put in/last.csv")
}

// multiRecord is a notification with three records, as S3 and MinIO's notification targets
// batch them (MinIO's listen API itself writes one record per notification line, so a live
// listen cannot produce one on demand): recorded, trimmed to the fields that matter here.
const multiRecord = `{"Records":[
 {"eventVersion":"2.0","eventSource":"minio:s3","awsRegion":"","eventTime":"2026-02-12T20:18:48.101Z","eventName":"s3:ObjectCreated:Put",
  "userIdentity":{"principalId":"minio"},"requestParameters":{"principalId":"hidden-key","sourceIPAddress":"127.0.0.1"},"responseElements":{"x-amz-request-id":"1"},
  "s3":{"s3SchemaVersion":"1.0","configurationId":"Config","bucket":{"name":"input","ownerIdentity":{"principalId":"minio"},"arn":"arn:aws:s3:::input"},
        "object":{"key":"a.txt","size":1,"eTag":"e1","contentType":"text/plain","sequencer":"1"}},
  "source":{"host":"127.0.0.1","port":"","userAgent":"test"}},
 {"eventVersion":"2.0","eventSource":"minio:s3","eventTime":"2026-02-12T20:18:48.202Z","eventName":"s3:ObjectCreated:Copy",
  "s3":{"bucket":{"name":"input"},"object":{"key":"b.txt","size":2}}},
 {"eventVersion":"2.0","eventSource":"minio:s3","eventTime":"2026-02-12T20:18:48.303Z","eventName":"s3:ObjectRemoved:Delete",
  "s3":{"bucket":{"name":"input"},"object":{"key":"a.txt"}}}]}`

// Every record of a notification is its own event, in order, carrying that record (v0.10
// sent only the first).
func TestEveryRecordIsAnEvent(t *testing.T) {
	var info notification.Info
	if err := json.Unmarshal([]byte(multiRecord), &info); err != nil {
		t.Fatal(err)
	}
	events, err := recordEvents(info, "hidden-key")
	if err != nil {
		t.Fatal(err)
	}
	want := []struct{ name, key, time string }{
		{"s3:ObjectCreated:Put", "a.txt", "2026-02-12T20:18:48.101Z"},
		{"s3:ObjectCreated:Copy", "b.txt", "2026-02-12T20:18:48.202Z"},
		{"s3:ObjectRemoved:Delete", "a.txt", "2026-02-12T20:18:48.303Z"},
	}
	if len(events) != len(want) {
		t.Fatalf("%d events, want %d", len(events), len(want))
	}
	for i, ev := range events {
		var r payload
		if err := json.Unmarshal(ev.Payload, &r); err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if r.EventName != want[i].name || r.S3.Object.Key != want[i].key || r.S3.Bucket.Name != "input" {
			t.Errorf("event %d = %s %s in %s, want %s %s in input", i, r.EventName, r.S3.Object.Key, r.S3.Bucket.Name, want[i].name, want[i].key)
		}
		if ev.ContentType != "application/json" || ev.Time.Format(time.RFC3339Nano) != want[i].time {
			t.Errorf("event %d: content type %q, time %s", i, ev.ContentType, ev.Time.Format(time.RFC3339Nano))
		}
	}
	var first map[string]any
	json.Unmarshal(events[0].Payload, &first)
	if first["userIdentity"].(map[string]any)["principalId"] != "minio" || first["source"].(map[string]any)["userAgent"] != "test" {
		t.Errorf("first record lost fields: %s", events[0].Payload)
	}
	if got := first["requestParameters"].(map[string]any)["principalId"]; got != "[redacted]" {
		t.Errorf("requestParameters.principalId = %v, want the credential redacted", got)
	}
}

// MinIO ended mid-stream, killed (SIGKILL: the connection breaks) or stopped (SIGTERM: it
// ends the listen's response itself, which minio-go would follow by listening again at once
// and without a word), then restarted on the same port and data: the source listens again
// by itself, logs the gap, and delivers what happens after; what happened in the bucket
// while it was not listening produces no event (MinIO does not replay).
func TestMinIORestartMidStream(t *testing.T) {
	for _, tc := range []struct {
		name string
		end  func(*minioenv.Server)
	}{
		{"killed", (*minioenv.Server).Kill},
		{"stopped", (*minioenv.Server).Stop},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := minioenv.Start(t)
			srv.MakeBucket(t, "restart")
			c := srv.Client()
			logs := &testenv.SyncBuffer{}
			s := startSource(t, secretsDir(t, minioenv.AccessKey, minioenv.SecretKey), sourceData(srv, "restart"),
				server.WithLogger(slog.New(slog.NewJSONHandler(logs, nil))))
			waitListening(t, c, "restart", s, probes("before-"))
			put(t, c, "restart", "before")
			expect(t, s, "s3:ObjectCreated:Put before")

			tc.end(srv)
			srv.Restart(t)
			waitListening(t, c, "restart", s, probes("after-"))
			for i := range 3 {
				put(t, c, "restart", "after-"+strconv.Itoa(i))
			}
			expect(t, s, "s3:ObjectCreated:Put after-0", "s3:ObjectCreated:Put after-1", "s3:ObjectCreated:Put after-2")

			// The gap is reported, with its length: operators must know events may be missing.
			gaps := records(t, logs, func(r logRecord) bool { return r["gap"] != nil })
			if len(gaps) != 1 || gaps[0]["bucket"] != "restart" {
				t.Errorf("gap log records = %v, want one for bucket restart", gaps)
			}
			if testing.Verbose() {
				t.Logf("logs:\n%s", logs)
			}
		})
	}
}

// logRecord is one JSON log line.
type logRecord map[string]any

// records are the log lines that keep accepts.
func records(t testing.TB, logs *testenv.SyncBuffer, keep func(logRecord) bool) []logRecord {
	t.Helper()
	var out []logRecord
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var r logRecord
		if line == "" {
			continue
		}
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if keep(r) {
			out = append(out, r)
		}
	}
	return out
}

// Wrong credentials: the source fails with a clear error that names neither secret value,
// retries with its backoff, and listens once the secret is corrected (secrets are read at
// every attempt).
func TestWrongCredentials(t *testing.T) {
	srv := minioenv.Shared(t)
	srv.MakeBucket(t, "credentials")
	c := srv.Client()
	const wrongKey, wrongSecret = "not-the-access-key-7f3a", "not-the-secret-9c1e"
	dir := secretsDir(t, wrongKey, wrongSecret)
	logs := &testenv.SyncBuffer{}
	s := startSource(t, dir, sourceData(srv, "credentials"), server.WithLogger(slog.New(slog.NewJSONHandler(logs, nil))))

	failures := func() []logRecord {
		return records(t, logs, func(r logRecord) bool { return r["msg"] == "connection lost: reconnecting" })
	}
	testenv.Eventually(t, 20*time.Second, 20*time.Millisecond, func() error {
		if n := len(failures()); n < 3 {
			return fmt.Errorf("%d failed attempts logged, want 3 or more", n)
		}
		return nil
	})
	for _, r := range failures() {
		msg, _ := r["error"].(string)
		if !strings.Contains(msg, `bucket "credentials" at `+srv.Endpoint) || !strings.Contains(msg, "Access Key Id you provided does not exist") {
			t.Errorf("error %q does not say what is wrong", msg)
		}
	}
	if ev := s.Queued(); ev != nil {
		t.Fatalf("an event with wrong credentials: %s", ev.GetPayload())
	}

	dir.Put(t, "minio", "accesskey", minioenv.AccessKey)
	dir.Put(t, "minio", "secretkey", minioenv.SecretKey)
	waitListening(t, c, "credentials", s, probes(""))

	for _, v := range []string{wrongKey, wrongSecret, minioenv.SecretKey} {
		if strings.Contains(logs.String(), v) {
			t.Errorf("a log line holds the secret value %q", v)
		}
	}
}

// A missing secret is a clear error too, naming the secret, and the source starts once it
// exists.
func TestMissingSecret(t *testing.T) {
	srv := minioenv.Shared(t)
	srv.MakeBucket(t, "missing-secret")
	dir := testenv.NewSecretsDir(t)
	logs := &testenv.SyncBuffer{}
	s := startSource(t, dir, sourceData(srv, "missing-secret"), server.WithLogger(slog.New(slog.NewJSONHandler(logs, nil))))
	testenv.Eventually(t, 20*time.Second, 20*time.Millisecond, func() error {
		for _, r := range records(t, logs, func(r logRecord) bool { return r["msg"] == "connection lost: reconnecting" }) {
			if msg, _ := r["error"].(string); strings.HasPrefix(msg, "artifact.accessKey: secret minio/accesskey: no file minio/accesskey in ") {
				return nil
			}
		}
		return fmt.Errorf("no error naming the missing secret yet")
	})
	dir.Put(t, "minio", "accesskey", minioenv.AccessKey)
	dir.Put(t, "minio", "secretkey", minioenv.SecretKey)
	waitListening(t, srv.Client(), "missing-secret", s, probes(""))
}

// The gateway as a process, as in a pod, its secrets in GATEWAY_SECRETS_DIR (main's store):
// it starts and validates before any MinIO is there; then one source has the right
// credentials and delivers, one a wrong secret key (MinIO refuses it), one a secret that is
// missing; nothing the process writes, nor any error on its streams, shows a secret value.
func TestGatewayProcess(t *testing.T) {
	const wrong = "wr0ng-secret-key-value"
	minioenv.Binary(t) // skips now, before the process starts, without a MinIO
	dir := testenv.NewSecretsDir(t)
	dir.Put(t, "good", "accesskey", minioenv.AccessKey)
	dir.Put(t, "good", "secretkey", minioenv.SecretKey)
	dir.Put(t, "wrong", "accesskey", minioenv.AccessKey)
	dir.Put(t, "wrong", "secretkey", wrong)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	gw, proc := testenv.StartGatewayProcess(t, exe, nil, runAsGateway+"=1", secret.EnvDir+"="+string(dir), "LOG_LEVEL=debug", "GATEWAY_NAMESPACE=argo-events")
	data := func(endpoint, name string) string {
		return fmt.Sprintf("bucket: {name: process}\nendpoint: %s\ninsecure: true\naccessKey: {name: %s, key: accesskey}\nsecretKey: {name: %s, key: secretkey}\n%s", endpoint, name, name, fastBackoff)
	}
	// No MinIO yet: nothing listens on the endpoint, and validation does not care.
	resp, err := gw.Client.ValidateEventSource(t.Context(), &gateways.EventSource{Name: "unreachable", Data: data("127.0.0.1:1", "good")})
	if err != nil || !resp.GetIsValid() {
		t.Fatalf("ValidateEventSource with no MinIO = %v, %v; want valid", resp, err)
	}
	bad, err := gw.Client.ValidateEventSource(t.Context(), &gateways.EventSource{Name: "bad", Data: data("127.0.0.1:1", "good") + "\nevents: [s3:ObjectCreated]"})
	if err != nil || bad.GetIsValid() {
		t.Fatalf("ValidateEventSource = %v, %v; want invalid", bad, err)
	}

	srv := minioenv.Shared(t)
	srv.MakeBucket(t, "process")
	source := func(name string) *testenv.Stream {
		return testenv.OpenBufferedStream(t, gw.Client, &gateways.EventSource{Name: name, Data: data(srv.Endpoint, name)}, 256)
	}
	streams := map[string]*testenv.Stream{"good": source("good"), "wrong": source("wrong"), "missing": source("missing")}
	waitListening(t, srv.Client(), "process", streams["good"], probes(""))
	put(t, srv.Client(), "process", "delivered")
	ev := streams["good"].Next(t, 10*time.Second)
	if r := testenv.DecodeJSON[payload](t, ev); r.EventName+" "+key(t, r) != "s3:ObjectCreated:Put delivered" {
		t.Fatalf("event = %s", ev.GetPayload())
	}
	// The uploader is the gateway's own user here: its access key is redacted.
	testenv.ExpectNotShown(t, "the event", string(ev.GetPayload()), minioenv.AccessKey, minioenv.SecretKey)
	testenv.WaitLogged(t, proc.Output, "The request signature we calculated does not match the signature you provided", 2, 20*time.Second)
	testenv.WaitLogged(t, proc.Output, "artifact.accessKey: secret missing/accesskey: no file missing/accesskey", 2, 20*time.Second)

	if err := gw.Stop(); err != nil {
		t.Errorf("gateway process: %v", err)
	}
	var seen strings.Builder
	fmt.Fprintf(&seen, "validation: %s\n", bad.GetReason())
	for name, s := range streams {
		<-s.Ended()
		fmt.Fprintf(&seen, "stream %s: %v\n", name, s.Err())
	}
	testenv.ExpectNotShown(t, "the gateway process's output", proc.Output.String(), minioenv.AccessKey, minioenv.SecretKey, wrong)
	testenv.ExpectNotShown(t, "the streams' and validation's errors", seen.String(), minioenv.AccessKey, minioenv.SecretKey, wrong)
	if t.Failed() || testing.Verbose() {
		t.Logf("output:\n%s\n%s", proc.Output, seen.String())
	}
}

// The server starts and validates with no MinIO reachable and no secrets at all: validation
// dials nothing and resolves nothing.
func TestValidatesWithoutMinIO(t *testing.T) {
	gw := testenv.StartGateway(t, newGateway(secret.Dir(filepath.Join(t.TempDir(), "none"))))
	data := "bucket: {name: input}\nendpoint: 127.0.0.1:1\ninsecure: true\naccessKey: {name: minio, key: accesskey}\nsecretKey: {name: minio, key: secretkey}"
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	v, err := gw.Client.ValidateEventSource(ctx, &gateways.EventSource{Name: "ok", Data: data})
	if err != nil || !v.GetIsValid() {
		t.Fatalf("ValidateEventSource = %v, %v; want valid", v, err)
	}
	testenv.ExpectInvalid(t, gw.Client, []testenv.InvalidCase{
		{Name: "unknown event", Data: data + "\nevents: ['s3:ObjectCreated:Pt']", Reason: `artifact.events[0]: unknown S3 event "s3:ObjectCreated:Pt"`},
		{Name: "empty bucket", Data: strings.Replace(data, "input", "''", 1), Reason: "artifact.bucket.name: is required"},
		{Name: "secret reference without key", Data: strings.Replace(data, ", key: secretkey", "", 1), Reason: `artifact.secretKey.key: required: the key in Secret "minio"`},
	})
	// Still serving after the bad input.
	if v, err := gw.Client.ValidateEventSource(ctx, &gateways.EventSource{Name: "ok", Data: data}); err != nil || !v.GetIsValid() {
		t.Fatalf("ValidateEventSource after bad input = %v, %v", v, err)
	}
}

// reconnects are the log lines of failed or ended listens.
func reconnects(t testing.TB, logs *testenv.SyncBuffer) []logRecord {
	t.Helper()
	return records(t, logs, func(r logRecord) bool { return r["msg"] == "connection lost: reconnecting" })
}

// A listen whose connection goes silent without failing (a frozen proxy, a dropped NAT or
// load balancer flow: no read ever ends) is given up once MinIO's pings stop coming: the
// source listens again, the silence and the gap are logged, and what happens after is
// delivered.
func TestSilentListenIsGivenUp(t *testing.T) {
	srv := minioenv.Shared(t)
	srv.MakeBucket(t, "silent")
	c := srv.Client()
	p := startFreezingProxy(t, srv.Endpoint)
	gw := newGateway(secret.Dir(string(secretsDir(t, minioenv.AccessKey, minioenv.SecretKey))))
	gw.ping = time.Second // given up after 3 s without a ping
	logs := &testenv.SyncBuffer{}
	s := startGatewaySource(t, gw, sourceDataAt(p.Addr, "silent"), server.WithLogger(slog.New(slog.NewJSONHandler(logs, nil))))
	waitListening(t, c, "silent", s, probes("before-"))

	p.Freeze()
	waitListening(t, c, "silent", s, probes("after-"))
	put(t, c, "silent", "after")
	expect(t, s, "s3:ObjectCreated:Put after")

	silent := false
	for _, r := range reconnects(t, logs) {
		msg, _ := r["error"].(string)
		silent = silent || msg == `listen to bucket "silent" at `+p.Addr+": no data or ping from MinIO for 3s"
	}
	if !silent {
		t.Errorf("no failure logged for the silent listen; failures: %v", reconnects(t, logs))
	}
	if gaps := records(t, logs, func(r logRecord) bool { return r["gap"] != nil }); len(gaps) != 1 {
		t.Errorf("gap log records = %v, want one", gaps)
	}
}

// A user allowed only to listen (s3:ListenBucketNotification on the bucket, all that v0.10
// needed) gets the events: the source asks for nothing more. Shown with a bucket policy for
// anonymous requests (empty secret values: minio-go signs nothing), which MinIO evaluates as
// it does a user's.
func TestListenOnlyPermission(t *testing.T) {
	srv := minioenv.Shared(t)
	srv.MakeBucket(t, "listen-only")
	c := srv.Client()
	policy := `{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": ["*"]},
		"Action": ["s3:ListenBucketNotification"], "Resource": ["arn:aws:s3:::listen-only"]}]}`
	if err := c.SetBucketPolicy(t.Context(), "listen-only", policy); err != nil {
		t.Fatal(err)
	}
	s := startSource(t, secretsDir(t, "", ""), sourceData(srv, "listen-only"))
	waitListening(t, c, "listen-only", s, probes(""))
	put(t, c, "listen-only", "delivered")
	expect(t, s, "s3:ObjectCreated:Put delivered")
}

// Each listen attempt takes its connections to MinIO with it: a source that keeps failing
// (refused credentials, retried every 50 ms) does not pile up one per attempt, and a stopped
// source leaves none.
func TestFailedAttemptsCloseTheirConnections(t *testing.T) {
	srv := minioenv.Shared(t)
	srv.MakeBucket(t, "attempts")
	p := startFreezingProxy(t, srv.Endpoint)
	logs := &testenv.SyncBuffer{}
	s := startSource(t, secretsDir(t, "wrong-access-key", "wrong-secret-key"), sourceDataAt(p.Addr, "attempts"),
		server.WithLogger(slog.New(slog.NewJSONHandler(logs, nil))))
	const attempts = 20
	testenv.Eventually(t, 20*time.Second, 20*time.Millisecond, func() error {
		if n := len(reconnects(t, logs)); n < attempts {
			return fmt.Errorf("%d failed attempts logged, want %d", n, attempts)
		}
		return nil
	})
	// The attempt under way may hold one, and the proxy learns of a close a moment late.
	if n := p.Open(); n > 2 {
		t.Errorf("%d connections open after %d failed attempts, want those of the last one only", n, attempts)
	}
	s.Close()
	testenv.Eventually(t, 5*time.Second, 20*time.Millisecond, func() error {
		if n := p.Open(); n > 0 {
			return fmt.Errorf("%d connections open after the source stopped", n)
		}
		return nil
	})
}

// freezingProxy forwards TCP connections to a server. Freeze silences the connections open
// at that moment without closing them, as a stalled proxy or a dropped NAT or load balancer
// flow does: nothing goes through either way, and neither end learns of it. Later
// connections forward again.
type freezingProxy struct {
	// Addr is the host:port to connect to instead of the server's.
	Addr   string
	target string
	mu     sync.Mutex
	// frozen is closed by Freeze: the connections open until then carry nothing more.
	frozen chan struct{}
	conns  []net.Conn
	open   int
}

// startFreezingProxy forwards a new loopback port to target until the test ends.
func startFreezingProxy(t testing.TB, target string) *freezingProxy {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &freezingProxy{Addr: lis.Addr().String(), target: target, frozen: make(chan struct{})}
	go p.serve(lis)
	t.Cleanup(func() {
		lis.Close()
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, c := range p.conns {
			c.Close()
		}
	})
	return p
}

func (p *freezingProxy) serve(lis net.Listener) {
	for {
		client, err := lis.Accept()
		if err != nil {
			return
		}
		upstream, err := net.Dial("tcp", p.target)
		if err != nil {
			client.Close()
			continue
		}
		p.mu.Lock()
		frozen := p.frozen
		p.conns = append(p.conns, client, upstream)
		p.open++
		p.mu.Unlock()
		go func() {
			pipe(upstream, client, frozen)
			p.mu.Lock()
			p.open--
			p.mu.Unlock()
		}()
		go pipe(client, upstream, frozen)
	}
}

// pipe copies src to dst until src ends, then closes dst. Once frozen is closed, what src
// sends is read and dropped.
func pipe(dst, src net.Conn, frozen <-chan struct{}) {
	defer dst.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		select {
		case <-frozen:
		default:
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// Freeze silences every connection open now.
func (p *freezingProxy) Freeze() {
	p.mu.Lock()
	defer p.mu.Unlock()
	close(p.frozen)
	p.frozen = make(chan struct{})
}

// Open is how many connections are open: accepted, and not closed by their client.
func (p *freezingProxy) Open() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.open
}
