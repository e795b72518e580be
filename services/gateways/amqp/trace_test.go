package main

import (
	"fmt"
	"maps"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/eventgate/eventgate/pkg/testenv"
	"github.com/eventgate/eventgate/pkg/testenv/amqpenv"
	"github.com/eventgate/eventgate/protos/gateways"
)

// A message's traceparent and tracestate headers, as strings or as bytes, become the
// event's trace context metadata; a message without them, or with a malformed traceparent
// or one of another type, has none.
func TestMessageHeadersCarryTraceContext(t *testing.T) {
	const parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	b := amqpenv.Start(t)
	exchange, _ := names(t)
	gw := testenv.StartGateway(t, gateway{})
	data := fmt.Sprintf("url: %s\nexchangeName: %s\nexchangeType: topic\nroutingKey: traced", b.URL, exchange)
	s := testenv.OpenStream(t, gw.Client, &gateways.EventSource{Name: "traced", Data: data})
	waitConsuming(t, b.URL, exchange, "traced", s)

	cases := []struct {
		body    string
		headers amqp.Table
		want    map[string]string
	}{
		{"string", amqp.Table{"traceparent": parent, "tracestate": "vendor=1", "other": "x"}, map[string]string{"traceparent": parent, "tracestate": "vendor=1"}},
		{"bytes", amqp.Table{"traceparent": []byte(parent)}, map[string]string{"traceparent": parent}},
		{"untraced", amqp.Table{"other": "x"}, nil},
		{"malformed", amqp.Table{"traceparent": "00-nope-01"}, nil},
		{"not a string", amqp.Table{"traceparent": int32(7)}, nil},
	}
	var msgs []amqp.Publishing
	for _, c := range cases {
		msgs = append(msgs, amqp.Publishing{Body: []byte(c.body), Headers: c.headers})
	}
	publish(t, b.URL, exchange, "traced", msgs...)
	for _, c := range cases {
		var ev *gateways.Event
		for {
			ev = s.Next(t, 30*time.Second)
			if decode(t, ev.GetPayload()).text(t) != probe {
				break
			}
		}
		if got := decode(t, ev.GetPayload()).text(t); got != c.body {
			t.Fatalf("event %q, want %q", got, c.body)
		}
		if md := ev.GetMetadata(); !maps.Equal(md, c.want) {
			t.Errorf("%s: metadata %v, want %v", c.body, md, c.want)
		}
	}
}
