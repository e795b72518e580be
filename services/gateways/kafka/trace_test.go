package main

import (
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/eventgate/eventgate/pkg/testenv"
	"github.com/eventgate/eventgate/protos/gateways"
)

// A record's traceparent and tracestate headers become the event's trace context
// metadata; a record without them, or with a malformed traceparent, has none.
func TestRecordHeadersCarryTraceContext(t *testing.T) {
	const parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	b := startBroker(t, map[string]int32{"traced": 1})
	gw := testenv.StartGateway(t, gateway{})
	s := testenv.OpenStream(t, gw.Client, &gateways.EventSource{Name: "traced", Data: fmt.Sprintf("url: %s\ntopic: traced\npartition: \"0\"", b.addr())})
	waitConsuming(t, b, "traced", s)

	headers := func(kv ...string) []sarama.RecordHeader {
		var out []sarama.RecordHeader
		for i := 0; i+1 < len(kv); i += 2 {
			out = append(out, sarama.RecordHeader{Key: []byte(kv[i]), Value: []byte(kv[i+1])})
		}
		return out
	}
	cases := []struct {
		body    string
		headers []sarama.RecordHeader
		want    map[string]string
	}{
		{"traced", headers("traceparent", parent, "tracestate", "vendor=1", "other", "x"), map[string]string{"traceparent": parent, "tracestate": "vendor=1"}},
		{"untraced", headers("other", "x"), nil},
		{"malformed", headers("traceparent", "00-nope-01"), nil},
	}
	var msgs []*sarama.ProducerMessage
	for _, c := range cases {
		msgs = append(msgs, &sarama.ProducerMessage{Topic: "traced", Value: sarama.StringEncoder(c.body), Headers: c.headers})
	}
	b.produce(msgs...)
	for _, c := range cases {
		var ev *gateways.Event
		for {
			ev = s.Next(t, 30*time.Second)
			if decode(t, ev).text(t) != probe {
				break
			}
		}
		if got := decode(t, ev).text(t); got != c.body {
			t.Fatalf("event %q, want %q", got, c.body)
		}
		if md := ev.GetMetadata(); !maps.Equal(md, c.want) {
			t.Errorf("%s: metadata %v, want %v", c.body, md, c.want)
		}
	}
}
