package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eventgate/eventgate/pkg/config"
	"github.com/eventgate/eventgate/pkg/server"
)

// probeGateway is a gateway built on the framework for gwcat's tests: each source emits
// `events` events with a fixed payload, ID and time, so tests can compare printed lines
// exactly, then idles until cancelled, ends the stream, or fails.
type probeGateway struct {
	running atomic.Int64 // sources inside Start
}

type probeConfig struct {
	Events      int    `json:"events,omitempty"`
	Text        string `json:"text,omitempty"`   // the payload, as is
	Base64      string `json:"base64,omitempty"` // the payload, for bytes YAML cannot hold
	ContentType string `json:"contentType,omitempty"`
	End         bool   `json:"end,omitempty"`  // end the stream after the events
	Fail        string `json:"fail,omitempty"` // fail with this error after the events
}

// probeTime is the time of event 0; event i is i seconds later.
var probeTime = time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC)

func (*probeGateway) Type() string { return "probe" }

func (g *probeGateway) Parse(_, data string) (server.Source, error) {
	var cfg probeConfig
	if err := config.Decode("probe", data, &cfg); err != nil {
		return nil, err
	}
	var errs config.Errors
	if cfg.Events < 0 {
		errs.Addf("probe.events", "must not be negative, got %d", cfg.Events)
	}
	payload := []byte(cfg.Text)
	if cfg.Base64 != "" {
		var err error
		if payload, err = base64.StdEncoding.DecodeString(cfg.Base64); err != nil {
			errs.Addf("probe.base64", "%v", err)
		}
	}
	if err := errs.Err(); err != nil {
		return nil, err
	}
	return &probeSource{gw: g, cfg: cfg, payload: payload}, nil
}

type probeSource struct {
	gw      *probeGateway
	cfg     probeConfig
	payload []byte
}

func (s *probeSource) Start(ctx context.Context, emit server.Emit) error {
	s.gw.running.Add(1)
	defer s.gw.running.Add(-1)
	for i := range s.cfg.Events {
		ev := server.Event{
			Payload:     s.payload,
			ContentType: s.cfg.ContentType,
			ID:          fmt.Sprintf("ev-%d", i),
			Time:        probeTime.Add(time.Duration(i) * time.Second),
			Metadata:    map[string]string{"seq": fmt.Sprint(i)},
		}
		if err := emit(ctx, ev); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
	switch {
	case s.cfg.Fail != "":
		return errors.New(s.cfg.Fail)
	case s.cfg.End:
		return nil
	}
	<-ctx.Done()
	return nil
}

// probeData is a probe source's YAML (JSON is YAML), so payloads need no YAML quoting.
func probeData(t testing.TB, cfg probeConfig) string {
	t.Helper()
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// result is what one gwcat run left behind.
type result struct {
	code           int
	stdout, stderr string
}

// gwcat runs the command line in-process, as main would, with stdin as its input.
func gwcat(t testing.TB, stdin string, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(t.Context(), args, strings.NewReader(stdin), &stdout, &stderr)
	return result{code, stdout.String(), stderr.String()}
}

// lines splits output into its lines, without the final newline.
func lines(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}
