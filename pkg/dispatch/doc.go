// Package dispatch delivers CloudEvents to sensors without losing them: one bounded queue per
// sensor, ordered per key, retried with backoff as each sensor's Policy says (by default until
// the sensor accepts), given up events sent to a dead-letter sink, and back-pressure (Dispatch
// blocks) instead of dropping when a queue is full.
package dispatch
