package server

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/eventgate/eventgate/pkg/config"
)

// Session is one connection of a stream source to its broker: it connects, calls connected
// once it is consuming, and hands messages to emit until the connection breaks (an error)
// or ctx ends.
type Session func(ctx context.Context, connected func()) error

// ErrRefused marks a session's error (errors.Is) as the upstream refusing what the source
// asks of it, such as a queue declared other than it exists: a configuration problem, which
// Reconnect logs as such, at ERROR, rather than as a lost connection. It is tried again per
// the backoff all the same, as an operator may fix either side.
var ErrRefused = errors.New("refused by the upstream")

// Reconnect runs session for the life of the source: whenever it fails, before or after the
// first connect, it waits per b and runs it again. Waits start over once a session got
// connected, so a broker restart costs one short wait, not the backoff built up before. It
// returns nil when ctx ends, and the error when the event stream itself is gone (nothing
// is left to deliver to).
func Reconnect(ctx context.Context, b config.Backoff, session Session) error {
	log := LoggerFrom(ctx)
	for attempt := 0; ; attempt++ {
		err := session(ctx, func() {
			if attempt > 0 {
				log.Info("connected again", "attempts", attempt+1)
			}
			attempt = -1
		})
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, errStreamClosed):
			return err
		}
		wait := b.Delay(max(attempt, 0))
		if errors.Is(err, ErrRefused) {
			log.Error("refused: the upstream does not accept the source's configuration; trying again", "error", err, "retryIn", wait.Round(time.Millisecond), "attempt", attempt+2)
		} else {
			log.Warn("connection lost: reconnecting", "error", err, "retryIn", wait.Round(time.Millisecond), "attempt", attempt+2)
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil
		}
	}
}

type loggerKey struct{}

// LoggerFrom is the logger of the event source that ctx belongs to (named, with its ID),
// or slog.Default outside of one.
func LoggerFrom(ctx context.Context) *slog.Logger {
	if l, ok := ctx.Value(loggerKey{}).(*slog.Logger); ok {
		return l
	}
	return slog.Default()
}

func withLogger(ctx context.Context, l *slog.Logger) context.Context {
	return context.WithValue(ctx, loggerKey{}, l)
}
