package sensorsink

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
)

// MaxBodyBytes bounds one HTTP delivery, so that a runaway sender cannot exhaust memory.
const MaxBodyBytes = 4 << 20

// routes: events are POSTed to any path (v0.10 gateways post to the sensor's root, others
// may add a path); health and control have fixed paths that are never taken for events.
func (s *Sink) routes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /", s.serveEvent)
	mux.HandleFunc("GET /healthz", s.serveHealth)
	s.controlRoutes(mux)
	return mux
}

func (s *Sink) serveHealth(w http.ResponseWriter, _ *http.Request) {
	select {
	case <-s.closing:
		http.Error(w, "stopping", http.StatusServiceUnavailable)
	default:
		fmt.Fprintln(w, "ok")
	}
}

// serveEvent takes one CloudEvent (binary or structured mode) or a batch. The answer is
// what a sender's retry logic keys on: 200 accepted; 503 refused, try again; 4xx/415
// malformed, do not retry.
func (s *Sink) serveEvent(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			s.malformed("http", err)
			http.Error(w, fmt.Sprintf("event larger than %d bytes", tooLarge.Limit), http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, fmt.Sprintf("read body: %v", err), http.StatusBadRequest)
		return
	}
	// Reading the whole body first also lets net/http notice a sender that hangs up
	// while stalled, which ends r.Context().
	r.Body = io.NopCloser(bytes.NewReader(body))

	events, status, err := decodeHTTP(r)
	if err != nil {
		s.malformed("http", err)
		http.Error(w, err.Error(), status)
		return
	}
	switch v, reason := s.admit(r.Context()); v {
	case accept:
		s.record(events, "http")
		w.WriteHeader(http.StatusOK)
	case reject:
		s.log.Info("event refused", "transport", "http", "eventID", events[0].ID(), "reason", reason)
		http.Error(w, "sensor refuses events: "+reason, http.StatusServiceUnavailable)
	case abandon:
		s.log.Info("event abandoned", "transport", "http", "eventID", events[0].ID(), "reason", reason)
	}
}

// decodeHTTP reads the request as CloudEvents, with the status to answer if it is not.
func decodeHTTP(r *http.Request) ([]event.Event, int, error) {
	if cehttp.IsHTTPBatch(r.Header) {
		events, err := cehttp.NewEventsFromHTTPRequest(r)
		if err != nil {
			return nil, http.StatusBadRequest, fmt.Errorf("decode batch: %w", err)
		}
		if len(events) == 0 {
			return nil, http.StatusBadRequest, errors.New("empty batch")
		}
		for _, e := range events {
			if err := e.Validate(); err != nil {
				return nil, http.StatusBadRequest, fmt.Errorf("invalid event %q in batch: %w", e.ID(), err)
			}
		}
		return events, 0, nil
	}
	msg := cehttp.NewMessageFromHttpRequest(r)
	if msg.ReadEncoding() == binding.EncodingUnknown {
		return nil, http.StatusUnsupportedMediaType, fmt.Errorf(
			"not a CloudEvent: no ce-specversion header, and content type %q is not %s",
			r.Header.Get("Content-Type"), event.ApplicationCloudEventsJSON)
	}
	e, err := binding.ToEvent(r.Context(), msg)
	if err != nil {
		return nil, http.StatusBadRequest, fmt.Errorf("decode event: %w", err)
	}
	if err := e.Validate(); err != nil {
		return nil, http.StatusBadRequest, fmt.Errorf("invalid event: %w", err)
	}
	return []event.Event{*e}, 0, nil
}
