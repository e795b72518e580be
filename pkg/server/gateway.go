package server

import (
	"context"
	"fmt"
	"time"
)

// Gateway is what one gateway type implements; the framework does the rest.
type Gateway interface {
	// Type names the gateway type ("calendar"); it prefixes validation errors and logs.
	Type() string
	// Parse decodes and validates one event source's configuration (the ConfigMap value).
	// The error says which field is wrong and why; it is returned to the client as is.
	Parse(name, data string) (Source, error)
}

// Source is one valid event source, ready to start.
type Source interface {
	// Start produces events through emit until ctx ends, then returns nil. It returns an
	// error when the source fails for good; the client then restarts it.
	Start(ctx context.Context, emit Emit) error
}

// Emit hands one event to the client's stream. It blocks while the client is not reading,
// and on a StreamEventSource call also while the window of unacknowledged events is full
// (back-pressure reaches the source instead of a buffer growing), and returns an error
// once the stream is gone; a source stops producing then.
type Emit func(ctx context.Context, ev Event) error

// Event is what a source produces. The framework fills in what is left empty: the event
// source's name, a unique ID and the time of emission.
type Event struct {
	Payload     []byte
	ContentType string
	ID          string
	Time        time.Time
	Metadata    map[string]string
	// OrderingKey groups the events whose order matters (gateways.Event.ordering_key):
	// the client delivers events of one key in order and events of different keys
	// concurrently. Empty keeps the source's order for all its keyless events, the safe
	// default; a source whose events are independent sets a distinct key per event.
	OrderingKey string
	// OnFate, when set, learns what became of the event: it is called exactly once for
	// every event that Emit accepted (returned nil), never for one it refused. On a
	// StreamEventSource call that is when the client acknowledges the event (Delivered,
	// Retry or Dropped), or Lost when the call ends first; on StartEventSource it is
	// Delivered as soon as the event is on the stream, which is all that call can tell.
	// It runs on the framework's goroutine and must not block; a gateway that waits for
	// the fate hands it over through a buffered channel.
	OnFate func(Fate)
}

// Fate is what became of an emitted event.
type Fate int

const (
	// FateDelivered: the client delivered the event (every sensor took it), or, on
	// StartEventSource, the event is on the stream. The source may acknowledge it upstream.
	FateDelivered Fate = iota + 1
	// FateRetry: the client could not deliver it; the source should have it redelivered.
	FateRetry
	// FateDropped: the client dropped or dead-lettered it by policy; the source
	// acknowledges it upstream as handled.
	FateDropped
	// FateLost: the call ended before the client acknowledged the event, so nobody knows;
	// treat it as Retry.
	FateLost
)

func (f Fate) String() string {
	switch f {
	case FateDelivered:
		return "delivered"
	case FateRetry:
		return "retry"
	case FateDropped:
		return "dropped"
	case FateLost:
		return "lost"
	}
	return fmt.Sprintf("Fate(%d)", int(f))
}
