package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/eventgate/eventgate/pkg/config"
)

func TestReconnect(t *testing.T) {
	fast := config.Backoff{Duration: config.Duration(time.Millisecond), Factor: 1}

	t.Run("retries failures before and after connecting, until ctx ends", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var calls int
		err := Reconnect(ctx, fast, func(ctx context.Context, connected func()) error {
			calls++
			if calls == 2 {
				connected()
			}
			if calls == 5 {
				cancel()
				<-ctx.Done()
				return ctx.Err()
			}
			return fmt.Errorf("broker gone (call %d)", calls)
		})
		if err != nil || calls != 5 {
			t.Fatalf("Reconnect = %v after %d sessions, want nil after 5", err, calls)
		}
	})

	t.Run("stops when the event stream is gone", func(t *testing.T) {
		var calls int
		err := Reconnect(context.Background(), fast, func(context.Context, func()) error {
			calls++
			return fmt.Errorf("emit: %w", errStreamClosed)
		})
		if !errors.Is(err, errStreamClosed) || calls != 1 {
			t.Fatalf("Reconnect = %v after %d sessions, want the stream error after 1", err, calls)
		}
	})

	t.Run("a connect resets the backoff", func(t *testing.T) {
		// Growing waits: 1ms, 1s, ... A session that connects before failing must be
		// followed by the short wait again, or this test takes seconds per attempt.
		growing := config.Backoff{Duration: config.Duration(time.Millisecond), Factor: 1000}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var calls int
		Reconnect(ctx, growing, func(ctx context.Context, connected func()) error {
			calls++
			connected()
			if calls == 20 {
				cancel()
			}
			return errors.New("dropped")
		})
		if calls != 20 {
			t.Fatalf("%d sessions before the deadline, want 20: the wait was not reset by connecting", calls)
		}
	})

	t.Run("a refusal is logged as one, and retried", func(t *testing.T) {
		var logs bytes.Buffer
		log := slog.New(slog.NewTextHandler(&logs, nil))
		ctx, cancel := context.WithCancel(withLogger(context.Background(), log))
		defer cancel()
		var calls int
		Reconnect(ctx, fast, func(context.Context, func()) error {
			if calls++; calls == 3 {
				cancel()
			}
			return fmt.Errorf("declare queue %q: %w", "q", ErrRefused)
		})
		if calls != 3 {
			t.Fatalf("%d sessions, want 3: a refusal is retried until ctx ends", calls)
		}
		if got := strings.Count(logs.String(), "level=ERROR msg=\"refused: the upstream does not accept the source's configuration; trying again\""); got != 2 {
			t.Errorf("%d refusal lines, want 2:\n%s", got, &logs)
		}
		if strings.Contains(logs.String(), "connection lost") {
			t.Errorf("a refusal is logged as a lost connection:\n%s", &logs)
		}
	})
}
