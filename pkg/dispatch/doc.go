// Package dispatch delivers CloudEvents to sensors without losing them: one bounded, ordered
// queue per sensor, retried with exponential backoff and jitter until the sensor accepts,
// and back-pressure (Dispatch blocks) instead of dropping when a queue is full.
package dispatch
