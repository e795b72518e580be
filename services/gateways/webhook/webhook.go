package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/eventgate/eventgate/pkg/config"
	"github.com/eventgate/eventgate/pkg/server"
	"github.com/eventgate/eventgate/pkg/tracing"
)

// gatewayType names this gateway in logs, errors and CloudEvents.
const gatewayType = "webhook"

// gateway turns HTTP requests into events; its sources share HTTP servers by port.
type gateway struct {
	servers *servers
}

// newGateway binds the webhook servers to host (all interfaces when empty).
func newGateway(host string) gateway { return gateway{servers: newServers(host)} }

func (g gateway) Type() string { return gatewayType }

func (g gateway) Parse(name, data string) (server.Source, error) {
	var cfg Config
	if err := config.Decode(gatewayType, data, &cfg); err != nil {
		return nil, err
	}
	s, err := cfg.compile()
	if err != nil {
		return nil, err
	}
	return &source{name: name, settings: s, servers: g.servers}, nil
}

type source struct {
	name     string
	settings *settings
	servers  *servers
}

// Start makes the source's route active until ctx ends; requests to it become events.
func (s *source) Start(ctx context.Context, emit server.Emit) error {
	log := server.LoggerFrom(ctx)
	rt := &route{settings: s.settings, source: s.name, emit: emit, ctx: ctx, log: log}
	if s.settings.token != nil {
		sum := sha256.Sum256(s.settings.token)
		rt.tokenSum = &sum
	}
	ps, err := s.servers.add(ctx, rt)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	defer s.servers.remove(ps, rt)
	log.Info("webhook route active", "method", rt.method, "endpoint", rt.endpoint, "port", rt.port,
		"tls", rt.tls != nil, "auth", rt.tokenSum != nil, "url", rt.url)
	select {
	case <-ctx.Done():
		log.Info("webhook route inactive", "method", rt.method, "endpoint", rt.endpoint, "port", rt.port,
			"requestsWaiting", rt.waiting.Load())
		return nil
	case <-ps.served:
		return ps.failure()
	}
}

// route is one active source on its port.
type route struct {
	*settings
	source   string
	tokenSum *[sha256.Size]byte // nil: no auth
	emit     server.Emit
	// ctx is the source's: it ends when the source is removed, and with it every request
	// still waiting for the stream.
	ctx context.Context
	log *slog.Logger
	// waiting counts the requests waiting for the stream; those still waiting when the
	// route goes are answered 503.
	waiting atomic.Int64
	// refused counts 503s since the last warning, lastWarned is its time (Unix ns): under
	// sustained back-pressure a warning per request would cost CPU when there is none.
	refused, lastWarned atomic.Int64
}

// ServeHTTP answers 200 only once the event is safe: on a StreamEventSource call, once
// the client acknowledged it as delivered (every sensor took it) or dropped by its policy;
// on StartEventSource (v0.10 clients), once it is on the client's stream, which is all
// that call can tell. Whatever is not safe within streamTimeout is answered with a status
// the caller retries on (503), or one that says what to fix (401, 413, 400).
func (rt *route) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if rt.tokenSum != nil && !rt.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="eventgate"`)
		http.Error(w, "missing or wrong bearer token", http.StatusUnauthorized)
		return
	}
	if r.ContentLength > rt.maxPayload {
		tooLarge(w, rt.maxPayload)
		return
	}
	// MaxBytesReader also bounds chunked bodies, whose length is known only at the end.
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, rt.maxPayload))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			tooLarge(w, rt.maxPayload)
			return
		}
		http.Error(w, "read body: "+err.Error(), http.StatusBadRequest)
		return
	}

	// The framework reports the fate exactly once, from its own goroutine, for an event
	// that emit accepted; one slot is all it needs, and it never blocks.
	fate := make(chan server.Fate, 1)
	// Requests are independent: each event is its own ordering key, so that the client
	// may deliver them concurrently.
	id := rand.Text()
	ev := server.Event{Payload: encodePayload(r.Header, body), ContentType: "application/json", ID: id, OrderingKey: id,
		OnFate: func(f server.Fate) { fate <- f }}
	// Indexed, not Get: the canonical keys need no allocation, and most requests carry none.
	if tp := r.Header["Traceparent"]; len(tp) > 0 {
		ev.Metadata = tracing.Carry(nil, tp[0], r.Header.Get("Tracestate"))
	}
	ctx, cancel := context.WithTimeout(r.Context(), rt.streamTimeout)
	defer cancel()
	defer context.AfterFunc(rt.ctx, cancel)()
	// emit returns once the stream took the event, or with an error: stream gone, source
	// removed, caller gone, or the stream held back past streamTimeout. An event already
	// being written when the timeout passes is waited for: answering 503 then would make
	// the caller resend an event that arrives anyway.
	rt.waiting.Add(1)
	err = rt.emit(ctx, ev)
	if err == nil {
		err = waitFate(ctx, fate, rt.streamTimeout)
	}
	rt.waiting.Add(-1)
	if err != nil {
		reason := err.Error()
		if errors.Is(err, context.DeadlineExceeded) {
			reason = fmt.Sprintf("the event stream did not take the event within %s", rt.streamTimeout)
		}
		rt.warnRefused(reason)
		w.Header().Set("Retry-After", "1")
		http.Error(w, "event not delivered, retry: "+reason, http.StatusServiceUnavailable)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// errNoFate is waitFate's error when the acknowledgement did not come in time.
var errNoFate = errors.New("no acknowledgement")

// waitFate waits, within ctx, for an emitted event's fate: nil when the event is safe
// (delivered, or dropped by the client's policy), an error to answer 503 with otherwise.
// On StartEventSource the fate is already there when emit returns.
func waitFate(ctx context.Context, fate <-chan server.Fate, timeout time.Duration) error {
	var f server.Fate
	select {
	case f = <-fate:
	default:
		select {
		case f = <-fate:
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("%w from the gateway-client within %s", errNoFate, timeout)
			}
			return fmt.Errorf("%w: %v", errNoFate, ctx.Err())
		}
	}
	switch f {
	case server.FateDelivered, server.FateDropped:
		return nil
	case server.FateRetry:
		return errors.New("the gateway-client could not deliver the event")
	default:
		return errors.New("the event stream ended before the event was acknowledged")
	}
}

// warnRefused logs a refusal, at most once a second per route, with the number of refusals
// the warning stands for.
func (rt *route) warnRefused(reason string) {
	n := rt.refused.Add(1)
	now := time.Now().UnixNano()
	last := rt.lastWarned.Load()
	if now-last < int64(time.Second) || !rt.lastWarned.CompareAndSwap(last, now) {
		return
	}
	rt.refused.Add(-n)
	rt.log.Warn("webhook events not delivered: answered 503", "method", rt.method, "endpoint", rt.endpoint,
		"requests", n, "reason", reason)
}

// authorized compares the Bearer token in constant time: hashing both sides first also
// hides the token's length.
func (rt *route) authorized(r *http.Request) bool {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(token)))
	return subtle.ConstantTimeCompare(sum[:], rt.tokenSum[:]) == 1
}

func tooLarge(w http.ResponseWriter, limit int64) {
	http.Error(w, fmt.Sprintf("body larger than maxPayloadSize (%d bytes)", limit), http.StatusRequestEntityTooLarge)
}

// encodePayload is the event payload: {"header": {...}, "body": ...}. The body is embedded
// as JSON when it is JSON, as a string when it is text, and as base64 (with
// "bodyEncoding": "base64") otherwise. The Authorization header is left out: the token
// must not travel on to every sensor.
func encodePayload(h http.Header, body []byte) []byte {
	out := make([]byte, 0, len(body)+256)
	out = append(out, `{"header":{`...)
	keys := make([]string, 0, len(h))
	for k := range h {
		if k != "Authorization" {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys) // a stable payload for the same request
	for i, k := range keys {
		if i > 0 {
			out = append(out, ',')
		}
		out = appendJSONString(out, k)
		out = append(out, ":["...)
		for j, v := range h[k] {
			if j > 0 {
				out = append(out, ',')
			}
			out = appendJSONString(out, v)
		}
		out = append(out, ']')
	}
	out = append(out, `},"body":`...)
	switch {
	case len(body) > 0 && json.Valid(body):
		out = append(out, body...)
	case utf8.Valid(body):
		out = appendJSONString(out, string(body))
	default:
		out = append(out, '"')
		out = base64.StdEncoding.AppendEncode(out, body)
		out = append(out, `","bodyEncoding":"base64"`...)
	}
	return append(out, '}')
}

// appendJSONString appends s as a JSON string. Header values and text bodies are mostly
// plain ASCII, which is copied as is; anything else goes through encoding/json.
func appendJSONString(out []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x7f || c == '<' || c == '>' || c == '&' {
			quoted, _ := json.Marshal(s) // a string always encodes
			return append(out, quoted...)
		}
	}
	out = append(out, '"')
	out = append(out, s...)
	return append(out, '"')
}

// allowed lists the methods of an endpoint for the Allow header, sorted.
func allowed(byMethod map[string]*route) string {
	methods := make([]string, 0, len(byMethod))
	for m := range byMethod {
		methods = append(methods, m)
	}
	slices.Sort(methods)
	return strings.Join(methods, ", ")
}
