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
	// refused (503s), tooLarge (413s for the event's size) and badIDs (idHeader values
	// that cannot be ids) are logged at most once a second each.
	refused, tooLarge, badIDs warnLimit
}

// warnLimit lets a route log one kind of warning at most once a second, with the number of
// occurrences the warning stands for: under sustained back-pressure, or a caller repeating
// a bad request, a warning per request would cost CPU when there is none.
type warnLimit struct {
	// count is the occurrences since the last warning, last its time (Unix ns).
	count, last atomic.Int64
}

// occurred counts one occurrence, and returns how many the warning to log now stands for,
// or 0 when a warning was logged within the last second.
func (l *warnLimit) occurred() int64 {
	n := l.count.Add(1)
	now := time.Now().UnixNano()
	last := l.last.Load()
	if now-last < int64(time.Second) || !l.last.CompareAndSwap(last, now) {
		return 0
	}
	l.count.Add(-n)
	return n
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
	id := rt.eventID(r)
	ev := server.Event{Payload: encodePayload(r.Header, body), ContentType: "application/json", ID: id, OrderingKey: id,
		OnFate: func(f server.Fate) { fate <- f }}
	// Indexed, not Get: the canonical keys need no allocation, and most requests carry none.
	if tp := r.Header["Traceparent"]; len(tp) > 0 {
		ev.Metadata = tracing.Carry(nil, tp[0], r.Header.Get("Tracestate"))
	}
	if size := rt.eventSize(ev); size > maxEventSize {
		rt.refuseTooLarge(w, size)
		return
	}
	// Not r.Context(): net/http cancels it when it reads EOF from the caller, which a caller
	// that half-closes its side and still reads the answer causes too; a 503 for its
	// delivered event would make it send the event again. A caller really gone cannot be
	// told apart from it, so its request waits as any other does, at most streamTimeout.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), rt.streamTimeout)
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
	if n := rt.refused.occurred(); n > 0 {
		rt.log.Warn("webhook events not delivered: answered 503", "method", rt.method, "endpoint", rt.endpoint,
			"requests", n, "reason", reason)
	}
}

// maxIDLength bounds an event id taken from idHeader. Delivery ids and idempotency keys
// (UUIDs, ULIDs) are far shorter; a sensor keeps ids to recognise duplicates, and every
// event carries its id twice (as id and ordering key).
const maxIDLength = 256

// eventID is the event's id: the value of the source's idHeader when the request carries
// it, so that a caller's retry of a request makes an event with the same id; a random id
// otherwise. A value that cannot be an id (longer than maxIDLength, or not UTF-8, which a
// protobuf string must be) is logged and replaced by a random id: the event is delivered
// all the same, only without the id its retries would share.
func (rt *route) eventID(r *http.Request) string {
	if rt.idHeader == "" {
		return rand.Text()
	}
	// Indexed: idHeader is canonical (compile).
	values := r.Header[rt.idHeader]
	if len(values) == 0 || values[0] == "" {
		return rand.Text()
	}
	id := values[0]
	if len(id) > maxIDLength || !utf8.ValidString(id) {
		if n := rt.badIDs.occurred(); n > 0 {
			rt.log.Warn("webhook request's id header is not a usable event id: the event gets a random id",
				"method", rt.method, "endpoint", rt.endpoint, "header", rt.idHeader, "bytes", len(id),
				"maxBytes", maxIDLength, "utf8", utf8.ValidString(id), "requests", n)
		}
		return rand.Text()
	}
	return id
}

// eventSize is the size of what ev's message on the stream carries besides the framing
// that maxEventSize leaves room for: the payload, the source's name, the id, the ordering
// key, the content type and the trace metadata.
func (rt *route) eventSize(ev server.Event) int {
	n := len(ev.Payload) + len(rt.source) + len(ev.ID) + len(ev.OrderingKey) + len(ev.ContentType)
	for k, v := range ev.Metadata {
		n += len(k) + len(v)
	}
	return n
}

// refuseTooLarge answers 413 for an event larger than maxEventSize, which the
// gateway-client could not receive: emitted, it would end the source's stream.
func (rt *route) refuseTooLarge(w http.ResponseWriter, size int) {
	if n := rt.tooLarge.occurred(); n > 0 {
		rt.log.Warn("webhook request refused: its event is larger than a gateway-client accepts: answered 413",
			"method", rt.method, "endpoint", rt.endpoint, "eventBytes", size, "maxEventBytes", maxEventSize, "requests", n)
	}
	http.Error(w, fmt.Sprintf("the event for this request would be %d bytes, more than the %d bytes the gateway-client accepts (gRPC's default 4 MiB message limit): send a smaller body or fewer headers",
		size, maxEventSize), http.StatusRequestEntityTooLarge)
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
	// JSON that is not UTF-8 (Latin-1, say) passes json.Valid, but embedded it would make
	// the payload invalid JSON, and a sensor's decoder would lose its bytes to U+FFFD.
	text := utf8.Valid(body)
	switch {
	case len(body) > 0 && text && json.Valid(body):
		out = append(out, body...)
	case text:
		out = appendJSONString(out, string(body))
	default:
		out = append(out, '"')
		out = base64.StdEncoding.AppendEncode(out, body)
		out = append(out, `","bodyEncoding":"base64"`...)
	}
	return append(out, '}')
}

// appendJSONString appends s as a JSON string. Header values and text bodies are mostly
// plain ASCII, which is copied as is; anything else goes through appendEscaped.
func appendJSONString(out []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= utf8.RuneSelf {
			return appendEscaped(out, s)
		}
	}
	out = append(out, '"')
	out = append(out, s...)
	return append(out, '"')
}

// appendEscaped appends s as a JSON string as encoding/json does with SetEscapeHTML(false):
// quotes, backslashes and control characters escaped, invalid UTF-8 as U+FFFD, U+2028 and
// U+2029 escaped for JavaScript readers. <, > and & stay as they are: json.Marshal writes
// each as 6 bytes (\u003c) for HTML pages, which payloads are not, and a header of them
// would make an event 6 times the size of its request.
func appendEscaped(out []byte, s string) []byte {
	out = append(out, '"')
	start := 0 // s[start:i] is still to be copied as it is
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf:
			i++
		case c < utf8.RuneSelf:
			out = appendEscapedByte(append(out, s[start:i]...), c)
			i++
			start = i
		default:
			r, size := utf8.DecodeRuneInString(s[i:])
			if esc := escapedRune(r, size); esc != "" {
				out = append(append(out, s[start:i]...), esc...)
				start = i + size
			}
			i += size
		}
	}
	out = append(out, s[start:]...)
	return append(out, '"')
}

// escapedRune is the escape of a decoded non-ASCII rune of size bytes, or "" when it is
// copied as it is.
func escapedRune(r rune, size int) string {
	switch {
	case r == utf8.RuneError && size == 1: // a byte that is not UTF-8
		return `\ufffd`
	case r == '\u2028':
		return `\u2028`
	case r == '\u2029':
		return `\u2029`
	}
	return ""
}

// appendEscapedByte appends the JSON escape of c, a quote, a backslash or a control character.
func appendEscapedByte(out []byte, c byte) []byte {
	switch c {
	case '"', '\\':
		return append(out, '\\', c)
	case '\b':
		return append(out, '\\', 'b')
	case '\f':
		return append(out, '\\', 'f')
	case '\n':
		return append(out, '\\', 'n')
	case '\r':
		return append(out, '\\', 'r')
	case '\t':
		return append(out, '\\', 't')
	}
	const hex = "0123456789abcdef"
	return append(out, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
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
