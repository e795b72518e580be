package server

import (
	"context"
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

// Emit hands one event to the client's stream. It blocks while the client is not reading
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
}
