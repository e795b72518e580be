package main

import (
	"github.com/IBM/sarama"

	"github.com/eventgate/eventgate/pkg/tracing"
)

// traceContext is the event metadata for the W3C trace context in a record's headers
// (traceparent, tracestate, as OpenTelemetry's Kafka instrumentations write them), nil
// when there is none.
func traceContext(headers []*sarama.RecordHeader) map[string]string {
	var parent, state string
	for _, h := range headers {
		switch string(h.Key) {
		case tracing.TraceParent:
			parent = string(h.Value)
		case tracing.TraceState:
			state = string(h.Value)
		}
	}
	return tracing.Carry(nil, parent, state)
}
