package dispatch

import (
	"context"
	"errors"
	"unicode/utf8"
)

// The extensions a dead-lettered event carries: Knative's names for why it failed, so that
// tools made for Knative's dead-letter sinks read them, and eventgate's for the rest.
const (
	// ExtensionErrorDest is the sensor that did not take the event (its URL).
	ExtensionErrorDest = "knativeerrordest"
	// ExtensionErrorCode is the sensor's last HTTP status, absent when it never answered.
	ExtensionErrorCode = "knativeerrorcode"
	// ExtensionErrorData is the last attempt's error, the sensor's answer in it, truncated
	// to maxErrorData bytes.
	ExtensionErrorData = "knativeerrordata"
	// ExtensionAttempts is how many delivery attempts the sensor was given.
	ExtensionAttempts = "eventgateattempts"
	// ExtensionReason is rejected (an answer not worth retrying) or retries_exhausted.
	ExtensionReason = "eventgatereason"
)

const maxErrorData = 1024

// giveUp settles batch's events as q's policy says for events its sensor did not take:
// each goes to the dead-letter sink, retried until the sink takes it, or is dropped when
// there is none. It returns false if the dispatcher stopped first.
func (d *Dispatcher) giveUp(q *queue, batch []item, err error, attempts int, reason string) bool {
	m := d.opts.Metrics
	dl := q.policy.DeadLetter
	if dl == nil {
		for _, it := range batch {
			d.opts.Log.Warn("event dropped: the sensor did not take it and it has no dead-letter sink", "sensor", q.target.Name,
				"eventSource", it.source, "eventID", it.ev.ID(), "reason", reason, "attempts", attempts, "error", err)
			m.dropped.WithLabelValues(q.target.Name, reason).Inc()
		}
		q.dropped.Add(int64(len(batch)))
		d.settle(q, batch, Dropped)
		return true
	}
	for i, it := range batch {
		ev := it.ev.Clone()
		ev.SetExtension(ExtensionErrorDest, q.target.Sender.String())
		var answer *AnswerError
		if errors.As(err, &answer) {
			ev.SetExtension(ExtensionErrorCode, answer.Code)
		}
		ev.SetExtension(ExtensionErrorData, truncate(err.Error(), maxErrorData))
		ev.SetExtension(ExtensionAttempts, attempts)
		ev.SetExtension(ExtensionReason, reason)
		for try := 0; ; try++ {
			ctx, cancel := context.WithTimeout(d.stop, d.opts.AttemptTimeout)
			dlErr := dl.Send(ctx, ev)
			cancel()
			if dlErr == nil {
				break
			}
			m.deadLetterFailures.WithLabelValues(q.target.Name).Inc()
			wait := d.opts.Backoff.Delay(try)
			d.opts.Log.Warn("dead-letter sink did not take the event: will retry", "sensor", q.target.Name, "deadLetterSink", dl.String(),
				"eventSource", it.source, "eventID", it.ev.ID(), "attempt", try+1, "retryIn", wait, "error", dlErr)
			if sleep(d.stop, wait) != nil {
				return false
			}
		}
		d.opts.Log.Info("event dead-lettered", "sensor", q.target.Name, "deadLetterSink", dl.String(),
			"eventSource", it.source, "eventID", it.ev.ID(), "reason", reason, "attempts", attempts, "error", err)
		m.deadLettered.WithLabelValues(q.target.Name, reason).Inc()
		q.deadLettered.Add(1)
		d.settle(q, batch[i:i+1], Dropped)
	}
	return true
}

// truncate cuts s to at most n bytes, on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
