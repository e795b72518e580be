package main

import amqp "github.com/rabbitmq/amqp091-go"

// headerString is a header's value as a string: publishers set the W3C trace context
// (traceparent, tracestate) as a string or as bytes; anything else is no trace context.
func headerString(t amqp.Table, key string) string {
	switch v := t[key].(type) {
	case string:
		return v
	case []byte:
		return string(v)
	}
	return ""
}
