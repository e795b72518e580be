package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/notification"

	"github.com/eventgate/eventgate/pkg/config"
	"github.com/eventgate/eventgate/pkg/secret"
	"github.com/eventgate/eventgate/pkg/server"
)

// gatewayType names this gateway in logs, errors and CloudEvents.
const gatewayType = "artifact"

// gateway listens to MinIO bucket notifications.
type gateway struct {
	// secrets resolves the sources' credentials when they start.
	secrets secret.Store
}

func newGateway(secrets secret.Store) gateway { return gateway{secrets: secrets} }

func (g gateway) Type() string { return gatewayType }

func (g gateway) Parse(name, data string) (server.Source, error) {
	cfg, err := config.Parse[Config](gatewayType, data)
	if err != nil {
		return nil, err
	}
	return &source{name: name, cfg: *cfg, secrets: g.secrets}, nil
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

	tr, err := s.transport()
	if err != nil {
		return err
	}
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
	// Checked first because a listen on a missing bucket or with wrong credentials fails
	// with a less clear error, and only after the listen is sent.
	ok, err := client.BucketExists(ctx, bucket)
	if err != nil {
		return hide(fmt.Errorf("bucket %q at %s: %w", bucket, s.cfg.Endpoint, err))
	}
	if !ok {
		return fmt.Errorf("bucket %q at %s does not exist", bucket, s.cfg.Endpoint)
	}

	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	notifications := client.ListenBucketNotification(lctx, bucket, s.cfg.prefix(), s.cfg.suffix(), s.cfg.events())
	confirmed := tr.confirmed
	for {
		select {
		case <-ctx.Done():
			return nil
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
// again through server.Reconnect, with its backoff and the gap logged.
type listenTransport struct {
	base      http.RoundTripper
	sent      atomic.Bool
	confirmed chan struct{}
}

// errListenEnded is what the second listen request of a session fails with.
var errListenEnded = errors.New("the server ended the listen")

func (t *listenTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	// minio-go's listen requests, and only they, ask for pings.
	if !req.URL.Query().Has("ping") {
		return t.base.RoundTrip(req)
	}
	if t.sent.Swap(true) {
		return nil, errListenEnded
	}
	resp, err := t.base.RoundTrip(req)
	if err == nil && resp.StatusCode == http.StatusOK {
		close(t.confirmed)
	}
	return resp, err
}

// transport is a new HTTP transport (new connections per listen) trusting caCertPath's CAs
// when set; the file is read at each listen, so a renewed CA is picked up.
func (s *source) transport() (*listenTransport, error) {
	base := http.DefaultTransport.(*http.Transport).Clone()
	if !s.cfg.Insecure && s.cfg.CACertPath != "" {
		tlsConfig, err := (&config.TLS{CACertPath: s.cfg.CACertPath}).Config()
		if err != nil {
			return nil, fmt.Errorf("artifact.caCertPath: %w", err)
		}
		base.TLSClientConfig = tlsConfig
	}
	return &listenTransport{base: base, confirmed: make(chan struct{})}, nil
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
