package main

import (
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/eventgate/eventgate/pkg/testenv"
	"github.com/eventgate/eventgate/pkg/testenv/natsenv"
	"github.com/eventgate/eventgate/pkg/tracing"
)

const parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

// A message's traceparent and tracestate headers (lower-case, as OpenTelemetry writes
// them, or canonical) become the event's trace context metadata; a message without them,
// or with a malformed traceparent, has none.
func TestMessageHeadersCarryTraceContext(t *testing.T) {
	url := natsenv.Start(t, -1)
	gw := testenv.StartGateway(t, newGateway())
	s := events(t, gw, fmt.Sprintf("url: %s\nsubject: traced\n%s", url, fastBackoff))
	nc := connect(t, url)
	waitSubscribed(t, nc, s, "traced")

	cases := []struct {
		body   string
		header nats.Header
		want   map[string]string
	}{
		{"lower-case", nats.Header{"traceparent": {parent}, "tracestate": {"vendor=1"}, "other": {"x"}}, map[string]string{"traceparent": parent, "tracestate": "vendor=1"}},
		{"canonical", nats.Header{"Traceparent": {parent}}, map[string]string{"traceparent": parent}},
		{"untraced", nats.Header{"other": {"x"}}, nil},
		{"no headers", nil, nil},
		{"malformed", nats.Header{"traceparent": {"00-nope-01"}}, nil},
	}
	for _, c := range cases {
		if err := nc.PublishMsg(&nats.Msg{Subject: "traced", Header: c.header, Data: []byte(c.body)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		ev := s.Next(t, 10*time.Second)
		if got := string(testenv.DecodeJSON[received](t, ev).bytesBody(t)); got != c.body {
			t.Fatalf("event %q, want %q", got, c.body)
		}
		if md := ev.GetMetadata(); !maps.Equal(md, c.want) {
			t.Errorf("%s: metadata %v, want %v", c.body, md, c.want)
		}
	}
}

// On JetStream the trace context joins the stream metadata.
func TestJetStreamHeadersCarryTraceContext(t *testing.T) {
	e := startJetStream(t)
	msg := &nats.Msg{Subject: "orders.created", Header: nats.Header{"traceparent": {parent}}, Data: []byte("traced")}
	if _, err := e.js.PublishMsg(t.Context(), msg); err != nil {
		t.Fatal(err)
	}
	gw := testenv.StartGateway(t, newGateway())
	ev := nextJS(t, events(t, gw, e.source("traced", "")))
	if got := ev.GetMetadata()[tracing.TraceParent]; got != parent {
		t.Errorf("metadata %v, want traceparent %s beside the stream's keys", ev.GetMetadata(), parent)
	}
}
