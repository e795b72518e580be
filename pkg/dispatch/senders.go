package dispatch

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	neturl "net/url"
	"strings"
	"time"

	cenats "github.com/cloudevents/sdk-go/protocol/nats/v2"
	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/nats-io/nats.go"

	"github.com/eventgate/eventgate/pkg/cloudevent"
)

// Sender delivers one event to one sensor. An error means the sensor did not take it and
// the event is to be retried.
type Sender interface {
	Send(ctx context.Context, ev cloudevents.Event) error
	Close() error
	String() string
}

// BatchSender is a Sender that can also deliver several events in one request, in order;
// an error means none of them is to be taken as delivered.
type BatchSender interface {
	Sender
	SendBatch(ctx context.Context, evs []cloudevents.Event) error
}

type ceSender struct {
	client cloudevents.Client
	close  func() error
	target string
}

func (s *ceSender) Send(ctx context.Context, ev cloudevents.Event) (err error) {
	ctx, end := traceDelivery(ctx, ev, s.target, nil)
	defer func() { end(err) }()
	// A non-2xx answer is a NACK, a network error is undelivered: both are failures.
	if res := s.client.Send(ctx, ev); !cloudevents.IsACK(res) {
		err := fmt.Errorf("deliver to %s: %w", s.target, res)
		var answer *cehttp.Result
		if cloudevents.ResultAs(res, &answer) && answer.StatusCode != 0 {
			return &AnswerError{Code: answer.StatusCode, Err: err}
		}
		return err
	}
	return nil
}

func (s *ceSender) Close() error   { return s.close() }
func (s *ceSender) String() string { return s.target }

// NewHTTPSender posts events to url in binary content mode (attributes as ce-* headers,
// data as the body), as Argo Events v0.10 sensors expect; batches go in batch mode.
func NewHTTPSender(url string) (Sender, error) {
	// Idle connections for as many deliveries as may be in flight (net/http keeps 2 per
	// host): beyond them, each delivery would dial, and leave a socket in TIME_WAIT.
	// DefaultTransport also caps idle connections to all hosts together at 100, which
	// would undo the per-host setting above that; this transport has one host.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = maxIdleConnsPerSensor
	tr.MaxIdleConns = maxIdleConnsPerSensor
	// A sensor's answer is read for its status and, on a refusal, the start of its body:
	// nothing worth compressing. Without this, every request says it accepts gzip, and a
	// sensor that compresses whatever it may (Benthos's http_server does) spends more CPU
	// on each empty answer's compressor than on the event.
	tr.DisableCompression = true
	if _, err := neturl.Parse(url); err != nil {
		return nil, fmt.Errorf("HTTP sender for %q: %w", url, err)
	}
	return &httpSender{target: url, http: &http.Client{Transport: tr, CheckRedirect: keepMethod}}, nil
}

// keepMethod follows only the redirects that repeat the request as it was (307 and 308).
// A 301, 302 or 303 to a POST would be followed by a GET without the event, and a 200 to
// it would count as delivered an event no sensor got: the redirect is the sensor's answer
// then, a refusal like any answer but a 2xx.
func keepMethod(req *http.Request, via []*http.Request) error {
	if req.Method != via[0].Method {
		return http.ErrUseLastResponse
	}
	if len(via) >= maxRedirects {
		return fmt.Errorf("stopped after %d redirects", maxRedirects)
	}
	return nil
}

// maxRedirects is net/http's own limit.
const maxRedirects = 10

// httpSender is the HTTP sender, which can batch. It writes requests with the SDK's
// binding (the same headers and body as its client) but sends them itself: the SDK
// client's Send validated each event again (the conversion did) and wrapped the request
// in layers of retry and result plumbing that cost a tenth of the gateway-client's CPU at
// full load.
type httpSender struct {
	target string
	http   *http.Client
}

func (s *httpSender) String() string { return s.target }

// Close lets the idle connections to the sensor go.
func (s *httpSender) Close() error {
	s.http.CloseIdleConnections()
	return nil
}

// Send posts ev in binary content mode. A non-2xx answer is an AnswerError, a network
// error a plain one: both are failures.
func (s *httpSender) Send(ctx context.Context, ev cloudevents.Event) (err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.target, nil)
	if err != nil {
		return fmt.Errorf("deliver to %s: %w", s.target, err)
	}
	ctx, end := traceDelivery(ctx, ev, s.target, req.Header)
	defer func() { end(err) }()
	if ctx != req.Context() {
		req = req.WithContext(ctx)
	}
	if err := cehttp.WriteRequest(ctx, (*binding.EventMessage)(&ev), req); err != nil {
		return fmt.Errorf("encode event %s for %s: %w", ev.ID(), s.target, err)
	}
	safeHeaders(req.Header)
	resp, err := s.http.Do(req)
	if err != nil {
		return fmt.Errorf("deliver to %s: %w", s.target, err)
	}
	return answer(resp, "deliver to "+s.target)
}

// answer reads and closes a sensor's response: nil for a 2xx, else an AnswerError with the
// status and the start of the body, which says why (it goes to the dead-letter sink).
func answer(resp *http.Response, what string) error {
	defer resp.Body.Close()
	var err error
	if resp.StatusCode/100 != 2 {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorData))
		if msg := strings.TrimSpace(string(body)); msg != "" {
			err = &AnswerError{Code: resp.StatusCode, Err: fmt.Errorf("%s: %s: %s", what, resp.Status, msg)}
		} else {
			err = &AnswerError{Code: resp.StatusCode, Err: fmt.Errorf("%s: %s", what, resp.Status)}
		}
	}
	io.Copy(io.Discard, resp.Body) // so that the connection is reused
	return err
}

// SendBatch posts evs as one CloudEvents batch (application/cloudevents-batch+json).
func (s *httpSender) SendBatch(ctx context.Context, evs []cloudevents.Event) error {
	for i := range evs {
		// Events carry their data as bytes, which a batch (JSON) would write as data_base64;
		// JSON data goes in as JSON, as a sensor reading it would expect. evs is the caller's
		// copy of the events, and the data itself is not changed.
		if evs[i].DataBase64 && cloudevent.IsJSON(evs[i].DataContentType()) && json.Valid(evs[i].Data()) {
			evs[i].DataBase64 = false
		}
	}
	end := traceBatch(ctx, evs, s.target)
	err := s.sendBatch(ctx, evs)
	end(err)
	return err
}

func (s *httpSender) sendBatch(ctx context.Context, evs []cloudevents.Event) error {
	req, err := cehttp.NewHTTPRequestFromEvents(ctx, s.target, evs)
	if err != nil {
		return fmt.Errorf("encode a batch of %d events: %w", len(evs), err)
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return fmt.Errorf("deliver a batch of %d to %s: %w", len(evs), s.target, err)
	}
	return answer(resp, fmt.Sprintf("deliver a batch of %d to %s", len(evs), s.target))
}

// maxIdleConnsPerSensor covers any sensible Options.Concurrency.
const maxIdleConnsPerSensor = 256

// NewNATSSender publishes events on subject of the NATS server at url. It does not connect:
// the Dispatcher does, in the background, retrying until the server answers, and holds the
// sensor's deliveries back meanwhile, so that a NATS server not up yet is waited for rather
// than fatal. Once connected, the NATS client reconnects by itself; a publish while
// disconnected is buffered by it or fails, and a failure is retried like any other.
func NewNATSSender(url, subject string) (Sender, error) {
	if _, err := neturl.Parse(url); err != nil || url == "" {
		return nil, fmt.Errorf("NATS sender for subject %q: bad URL %q", subject, url)
	}
	// Reconnecting for ever: a NATS server down for long is waited for like one not up yet.
	return &natsSender{url: url, subject: subject, connected: make(chan struct{})}, nil
}

// connector is a Sender that must connect before its first delivery: the Dispatcher calls
// connect until it succeeds, and no delivery is attempted before ready is closed.
type connector interface {
	connect() error
	ready() <-chan struct{}
}

type natsSender struct {
	url, subject string
	// connected is closed once sender is set; only the Dispatcher's connecting goroutine
	// sets it, before any worker reads it.
	connected chan struct{}
	sender    *ceSender
	conn      *nats.Conn
}

// natsConnectTimeout bounds one connection attempt to an unreachable NATS server, and the
// wait for its confirmation of a publish when the delivery has no deadline of its own.
const natsConnectTimeout = 2 * time.Second

func (s *natsSender) connect() error {
	// No reconnect buffer: nats.go would keep what is published while the server is away
	// in memory and report it sent, and the event would be acknowledged upstream as
	// delivered though a stop or a crash before the reconnect loses it. Without one, such
	// a publish fails and the Dispatcher holds the event back and retries it.
	nc, err := nats.Connect(s.url, nats.Timeout(natsConnectTimeout), nats.MaxReconnects(-1), nats.ReconnectBufSize(-1))
	if err != nil {
		return fmt.Errorf("connect to NATS at %s: %w", s.url, err)
	}
	p, err := cenats.NewSenderFromConn(nc, s.subject)
	if err != nil {
		nc.Close()
		return fmt.Errorf("NATS sender for %s subject %q: %w", s.url, s.subject, err)
	}
	c, err := cloudevents.NewClient(p)
	if err != nil {
		nc.Close()
		return fmt.Errorf("NATS sender for %s subject %q: %w", s.url, s.subject, err)
	}
	s.sender = &ceSender{client: c, close: func() error { nc.Close(); return nil }, target: s.String()}
	s.conn = nc
	close(s.connected)
	return nil
}

func (s *natsSender) ready() <-chan struct{} { return s.connected }

func (s *natsSender) Send(ctx context.Context, ev cloudevents.Event) error {
	select {
	case <-s.connected:
		if err := s.sender.Send(ctx, ev); err != nil {
			return err
		}
		// A publish is only in nats.go's write buffer; a server that died before reading
		// it, unnoticed yet, would lose it. The answer to a PING sent after it says the
		// server read it. (Core NATS still delivers at most once to the subscribers.)
		if err := s.flush(ctx); err != nil {
			return fmt.Errorf("deliver to %s: the NATS server did not confirm: %w", s, err)
		}
		return nil
	default:
		return fmt.Errorf("deliver to %s: not connected to NATS yet", s)
	}
}

func (s *natsSender) flush(ctx context.Context) error {
	if _, ok := ctx.Deadline(); ok {
		return s.conn.FlushWithContext(ctx)
	}
	return s.conn.FlushTimeout(natsConnectTimeout)
}

func (s *natsSender) Close() error {
	select {
	case <-s.connected:
		return s.sender.Close()
	default:
		return nil
	}
}

func (s *natsSender) String() string { return "nats://" + s.subject + "@" + s.url }
