package main

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	// Zone data inside the binary: the image has no /usr/share/zoneinfo.
	_ "time/tzdata"

	"github.com/eventgate/eventgate/pkg/config"
	"github.com/eventgate/eventgate/pkg/server"
)

// gatewayType names this gateway in logs, errors and CloudEvents.
const gatewayType = "calendar"

// gateway produces events on a cron schedule or at a fixed interval.
type gateway struct {
	clock clock
}

func (g gateway) Type() string { return gatewayType }

func (g gateway) Parse(_, data string) (server.Source, error) {
	var cfg Config
	if err := config.Decode(gatewayType, data, &cfg); err != nil {
		return nil, err
	}
	p, err := cfg.compile(g.clock.Now())
	if err != nil {
		return nil, err
	}
	return &source{plan: p, clock: g.clock}, nil
}

// payload is the event body, the same JSON v0.10 sent.
type payload struct {
	EventTime   time.Time       `json:"eventTime"`
	UserPayload json.RawMessage `json:"userPayload,omitempty"`
}

type source struct {
	plan  *plan
	clock clock
}

// Start fires at every planned time that is not on an excluded day, until ctx ends or the
// schedule has no next time.
func (s *source) Start(ctx context.Context, emit server.Emit) error {
	last := s.clock.Now().In(s.plan.location)
	for {
		at := s.nextFiring(last)
		if at.IsZero() {
			return nil
		}
		if err := s.clock.WaitUntil(ctx, at); err != nil {
			return nil
		}
		body, err := json.Marshal(payload{EventTime: at, UserPayload: s.plan.userPayload})
		if err != nil {
			return fmt.Errorf("encode event: %w", err)
		}
		err = emit(ctx, server.Event{Payload: body, ContentType: "application/json", Time: at})
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		last = at
		// A client that back-pressured us past the next firing gets the plan from now on,
		// not a burst of the firings it missed.
		if now := s.clock.Now().In(s.plan.location); s.plan.next(at).Before(now) {
			last = now
		}
	}
}

// nextFiring is the first planned time after last that is not on an excluded day.
func (s *source) nextFiring(last time.Time) time.Time {
	at := s.plan.next(last)
	for !at.IsZero() && s.plan.excluded[dateOf(at)] {
		at = s.plan.firstFrom(startOfNextDay(at))
	}
	return at
}

// clock is the time source; tests replace it to move through days instantly.
type clock interface {
	Now() time.Time
	// WaitUntil returns when t has come, or ctx's error if ctx ends first.
	WaitUntil(ctx context.Context, t time.Time) error
}

type wallClock struct{}

func (wallClock) Now() time.Time { return time.Now() }

func (wallClock) WaitUntil(ctx context.Context, t time.Time) error {
	timer := time.NewTimer(time.Until(t))
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
