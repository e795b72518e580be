package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/notification"
	"github.com/minio/minio-go/v7/pkg/s3utils"
	"github.com/minio/minio-go/v7/pkg/signer"

	"github.com/eventgate/eventgate/pkg/config"
	"github.com/eventgate/eventgate/pkg/secret"
	"github.com/eventgate/eventgate/pkg/server"
)

// gatewayType names this gateway in logs, errors and CloudEvents.
const gatewayType = "artifact"

// defaultPing is how often MinIO is asked to ping a listen: minio-go's own interval.
const defaultPing = 10 * time.Second

// missedPings is how many of MinIO's pings a listen misses before it is given up as dead.
const missedPings = 3

// gateway listens to MinIO bucket notifications.
type gateway struct {
	// secrets resolves the sources' credentials when they start.
	secrets secret.Store
	// ping is how often MinIO is asked to ping its sources' listens, in whole seconds
	// (MinIO's unit); tests shorten it.
	ping time.Duration
}

func newGateway(secrets secret.Store) gateway { return gateway{secrets: secrets, ping: defaultPing} }

func (g gateway) Type() string { return gatewayType }

func (g gateway) Parse(name, data string) (server.Source, error) {
	cfg, err := config.Parse[Config](gatewayType, data)
	if err != nil {
		return nil, err
	}
	return &source{name: name, cfg: *cfg, secrets: g.secrets, ping: g.ping}, nil
}

// A payload is one S3 event record in JSON, as MinIO sends it (the AWS S3 event message
// structure's Records[i]):
//
//	{"eventVersion": "2.0", "eventSource": "minio:s3", "awsRegion": "", "eventTime": "2026-...Z",
//	 "eventName": "s3:ObjectCreated:Put", "userIdentity": {"principalId": "..."},
//	 "requestParameters": {...}, "responseElements": {...},
//	 "s3": {"s3SchemaVersion": "1.0", "configurationId": "Config",
//	        "bucket": {"name": "input", "ownerIdentity": {"principalId": "..."}, "arn": "arn:aws:s3:::input"},
//	        "object": {"key": "a/b.txt", "size": 5, "eTag": "...", "contentType": "text/plain",
//	                   "userMetadata": {...}, "versionId": "", "sequencer": "..."}},
//	 "source": {"host": "...", "port": "", "userAgent": "..."}}
//
// A notification holding several records gives one event per record, in order.
type payload = notification.Event

// source is one bucket's listen. MinIO's listen API keeps nothing for a listener that is
// not there: what happens in the bucket while the listen is down (MinIO restarting, the
// network failing, the reconnect wait) produces no event.
type source struct {
	name    string
	cfg     Config
	secrets secret.Store
	// ping is how often MinIO is asked to ping the listen.
	ping time.Duration
}

// Start listens, and whenever the listen fails or ends, at any time, listens again after
// the configured backoff, until ctx ends or the event stream is gone. Each gap (from the
// loss of a listen to the next one confirmed by MinIO) is logged with its length.
func (s *source) Start(ctx context.Context, emit server.Emit) error {
	log := server.LoggerFrom(ctx)
	var lostAt time.Time
	return server.Reconnect(ctx, s.cfg.Backoff, func(ctx context.Context, connected func()) error {
		listening := false
		err := s.listen(ctx, func() {
			listening = true
			if !lostAt.IsZero() {
				log.Warn("listening again: events of the gap are lost (MinIO does not replay them)",
					"bucket", s.cfg.Bucket.Name, "gap", time.Since(lostAt).Round(time.Millisecond))
				lostAt = time.Time{}
			}
			connected()
		}, emit)
		if listening && ctx.Err() == nil {
			lostAt = time.Now()
		}
		return err
	})
}

// listen is one listen: it returns when the listen fails or ends (an error), the stream is
// gone (emit's error) or ctx ends.
func (s *source) listen(ctx context.Context, connected func(), emit server.Emit) error {
	log := server.LoggerFrom(ctx)
	// Resolved at every listen, so that a rotated or newly created secret is used at the
	// next attempt.
	accessKey, err := s.secrets.Get(ctx, *s.cfg.AccessKey)
	if err != nil {
		return fmt.Errorf("artifact.accessKey: %w", err)
	}
	secretKey, err := s.secrets.Get(ctx, *s.cfg.SecretKey)
	if err != nil {
		return fmt.Errorf("artifact.secretKey: %w", err)
	}
	hide := func(err error) error { return redact(err, accessKey, secretKey) }

	tr, err := s.transport(accessKey, secretKey)
	if err != nil {
		return err
	}
	// The attempt's connections end with it: failed attempts, retried every backoff, would
	// otherwise each leave one open to MinIO.
	defer tr.base.CloseIdleConnections()
	client, err := minio.New(s.cfg.Endpoint, &minio.Options{
		Creds:     credentials.NewStaticV4(accessKey, secretKey, ""),
		Secure:    !s.cfg.Insecure,
		Region:    s.cfg.Region,
		Transport: tr,
		// Retries are server.Reconnect's, with the source's backoff, logged alike.
		MaxRetries: 1,
	})
	if err != nil {
		return hide(fmt.Errorf("S3 client for %s: %w", s.cfg.Endpoint, err))
	}
	bucket := s.cfg.Bucket.Name
	// The listen is the first request: its errors name a missing bucket or refused
	// credentials as clearly as any check could, and a check first (BucketExists) needs a
	// permission, s3:ListBucket, that a user allowed only to listen does not have.
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	notifications := client.ListenBucketNotification(lctx, bucket, s.cfg.prefix(), s.cfg.suffix(), s.cfg.events())
	confirmed := tr.confirmed
	// A connection can go silent without ever failing (a frozen proxy, a dropped NAT or load
	// balancer flow): no read would end, and the listen would wait forever while events are
	// lost. MinIO pings the listen, so silence for a few pings means it is dead.
	watchdog := time.NewTicker(s.ping)
	defer watchdog.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-watchdog.C:
			if limit := missedPings * s.ping; tr.silence() > limit {
				return fmt.Errorf("listen to bucket %q at %s: no data or ping from MinIO for %s", bucket, s.cfg.Endpoint, limit)
			}
		case <-confirmed:
			confirmed = nil
			log.Info("listening", "endpoint", s.cfg.Endpoint, "bucket", bucket, "prefix", s.cfg.prefix(), "suffix", s.cfg.suffix(), "events", s.cfg.Events)
			connected()
		case info, ok := <-notifications:
			switch {
			case ctx.Err() != nil:
				return nil
			case !ok:
				// minio-go closes the channel after an error; closing without one is a
				// listen that stopped all the same, never a reason to stop the source.
				return fmt.Errorf("listen to bucket %q at %s ended", bucket, s.cfg.Endpoint)
			case info.Err != nil:
				return hide(fmt.Errorf("listen to bucket %q at %s: %w", bucket, s.cfg.Endpoint, info.Err))
			}
			events, err := recordEvents(info, accessKey, secretKey)
			if err != nil {
				return err
			}
			for _, ev := range events {
				if err := emit(ctx, ev); err != nil {
					return err
				}
			}
		}
	}
}

// recordEvents splits a notification into one event per record, in order. A JSON string
// of a record that is one of hidden (the source's credentials) becomes "[redacted]": a
// record names the user who made the change (principalId), which is the gateway's own
// access key when it shares MinIO's user with the uploader, and no secret value goes into
// an event.
func recordEvents(info notification.Info, hidden ...string) ([]server.Event, error) {
	var replace [][]byte
	for _, h := range hidden {
		if h != "" {
			quoted, _ := json.Marshal(h)
			replace = append(replace, quoted)
		}
	}
	events := make([]server.Event, 0, len(info.Records))
	for _, r := range info.Records {
		ev, err := server.JSONEvent(payload(r))
		if err != nil {
			return nil, err
		}
		for _, q := range replace {
			ev.Payload = bytes.ReplaceAll(ev.Payload, q, []byte(`"[redacted]"`))
		}
		if t, err := time.Parse(time.RFC3339Nano, r.EventTime); err == nil {
			ev.Time = t
		}
		events = append(events, ev)
	}
	return events, nil
}

// listenTransport is the HTTP transport of one listen. It tells when MinIO confirmed the
// listen (its response arrived, with the first event or ping), and it refuses a second
// listen request: minio-go would listen again by itself, at once and without a word, when
// the server ends the response; refused, minio-go reports the end, and the source listens
// again through server.Reconnect, with its backoff and the gap logged. It also tells how
// long the listen has been waiting for MinIO (silence), for the listen's watchdog.
type listenTransport struct {
	base      *http.Transport
	sent      atomic.Bool
	confirmed chan struct{}
	// ping is the interval the listen request asks MinIO to ping at; accessKey and secretKey
	// sign the request again when that changes it.
	ping                 time.Duration
	accessKey, secretKey string
	// waitingSince is when the request or response read in progress began waiting for
	// MinIO, in Unix nanoseconds; 0 while nothing waits.
	waitingSince atomic.Int64
}

// errListenEnded is what the second listen request of a session fails with.
var errListenEnded = errors.New("the server ended the listen")

func (t *listenTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	// minio-go's listen requests, and only they, ask for pings.
	listen := req.URL.Query().Has("ping")
	if listen {
		if t.sent.Swap(true) {
			return nil, errListenEnded
		}
		req = t.askPings(req)
	}
	done := t.wait()
	resp, err := t.base.RoundTrip(req)
	done()
	if err != nil {
		return nil, err
	}
	if listen && resp.StatusCode == http.StatusOK {
		close(t.confirmed)
	}
	resp.Body = &watchedBody{ReadCloser: resp.Body, t: t}
	return resp, nil
}

// askPings makes the listen request ask for a ping every t.ping. The request is signed again
// when that changes it, as AWS Signature V4 covers the query.
func (t *listenTransport) askPings(req *http.Request) *http.Request {
	query := req.URL.Query()
	ping := strconv.Itoa(int(t.ping / time.Second))
	if query.Get("ping") == ping {
		return req
	}
	req = req.Clone(req.Context())
	query.Set("ping", ping)
	req.URL.RawQuery = s3utils.QueryEncode(query)
	if auth := req.Header.Get("Authorization"); auth != "" {
		req = signer.SignV4(*req, t.accessKey, t.secretKey, "", signedRegion(auth))
	}
	return req
}

// signedRegion is the region of a Signature V4 Authorization header, the one minio-go chose:
// its credential scope is <access key>/<date>/<region>/s3/aws4_request.
func signedRegion(auth string) string {
	scope, _, _ := strings.Cut(auth, "/s3/aws4_request")
	return scope[strings.LastIndex(scope, "/")+1:]
}

// wait marks the start of a wait for MinIO, which done ends.
func (t *listenTransport) wait() (done func()) {
	t.waitingSince.Store(time.Now().UnixNano())
	return func() { t.waitingSince.Store(0) }
}

// silence is how long the wait for MinIO in progress has lasted, 0 without one. Time spent
// while nobody reads (the source busy emitting) is no silence: MinIO's bytes wait in the
// connection meanwhile.
func (t *listenTransport) silence() time.Duration {
	since := t.waitingSince.Load()
	if since == 0 {
		return 0
	}
	return time.Since(time.Unix(0, since))
}

// watchedBody is a response body whose reads count as waits for MinIO.
type watchedBody struct {
	io.ReadCloser
	t *listenTransport
}

func (b *watchedBody) Read(p []byte) (int, error) {
	done := b.t.wait()
	defer done()
	return b.ReadCloser.Read(p)
}

// transport is a new HTTP transport (new connections per listen) trusting caCertPath's CAs
// when set; the file is read at each listen, so a renewed CA is picked up. It signs with
// accessKey and secretKey when it changes the listen request.
func (s *source) transport(accessKey, secretKey string) (*listenTransport, error) {
	base := http.DefaultTransport.(*http.Transport).Clone()
	if !s.cfg.Insecure && s.cfg.CACertPath != "" {
		tlsConfig, err := (&config.TLS{CACertPath: s.cfg.CACertPath}).Config()
		if err != nil {
			return nil, fmt.Errorf("artifact.caCertPath: %w", err)
		}
		base.TLSClientConfig = tlsConfig
	}
	return &listenTransport{base: base, ping: s.ping, accessKey: accessKey, secretKey: secretKey, confirmed: make(chan struct{})}, nil
}

// redact replaces the secrets' values in err's text, should a server or library ever echo
// them: no secret value goes into a log line or a status message.
func redact(err error, values ...string) error {
	msg := err.Error()
	hit := false
	for _, v := range values {
		if v != "" && strings.Contains(msg, v) {
			msg, hit = strings.ReplaceAll(msg, v, "[redacted]"), true
		}
	}
	if !hit {
		return err
	}
	return errors.New(msg)
}
