package dispatch

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	cenats "github.com/cloudevents/sdk-go/protocol/nats/v2"
	cloudevents "github.com/cloudevents/sdk-go/v2"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

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

func (s *ceSender) Send(ctx context.Context, ev cloudevents.Event) error {
	// A non-2xx answer is a NACK, a network error is undelivered: both are failures.
	if res := s.client.Send(ctx, ev); !cloudevents.IsACK(res) {
		return fmt.Errorf("deliver to %s: %w", s.target, res)
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
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = maxIdleConnsPerSensor
	p, err := cehttp.New(cehttp.WithTarget(url), cehttp.WithRoundTripper(tr))
	if err != nil {
		return nil, fmt.Errorf("HTTP sender for %q: %w", url, err)
	}
	c, err := cloudevents.NewClient(p)
	if err != nil {
		return nil, fmt.Errorf("HTTP sender for %q: %w", url, err)
	}
	return &httpSender{
		ceSender: ceSender{client: c, close: func() error { return nil }, target: url},
		http:     &http.Client{Transport: tr},
	}, nil
}

// httpSender is the HTTP sender, which can batch.
type httpSender struct {
	ceSender
	http *http.Client
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
	req, err := cehttp.NewHTTPRequestFromEvents(ctx, s.target, evs)
	if err != nil {
		return fmt.Errorf("encode a batch of %d events: %w", len(evs), err)
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return fmt.Errorf("deliver a batch of %d to %s: %w", len(evs), s.target, err)
	}
	io.Copy(io.Discard, resp.Body) // so that the connection is reused
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("deliver a batch of %d to %s: %s", len(evs), s.target, resp.Status)
	}
	return nil
}

// maxIdleConnsPerSensor covers any sensible Options.Concurrency.
const maxIdleConnsPerSensor = 256

// NewNATSSender publishes events on subject of the NATS server at url. The NATS client
// reconnects by itself; a publish while disconnected is buffered by it or fails, and a
// failure is retried like any other.
func NewNATSSender(url, subject string) (Sender, error) {
	p, err := cenats.NewSender(url, subject, cenats.NatsOptions())
	if err != nil {
		return nil, fmt.Errorf("NATS sender for %s subject %q: %w", url, subject, err)
	}
	c, err := cloudevents.NewClient(p)
	if err != nil {
		p.Close(context.Background())
		return nil, fmt.Errorf("NATS sender for %s subject %q: %w", url, subject, err)
	}
	return &ceSender{client: c, close: func() error { return p.Close(context.Background()) }, target: "nats://" + subject + "@" + url}, nil
}
