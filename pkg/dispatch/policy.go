package dispatch

import (
	"errors"
	"time"
)

// Policy is what a target does with an event its sensor does not take. The zero value is
// the default: retry for ever with the dispatcher's backoff, so that a sensor outage holds
// its events rather than dropping them, and drop what the sensor refuses for good.
type Policy struct {
	// MaxAttempts bounds a delivery's attempts, the first included (0: no bound).
	MaxAttempts int
	// RetryFor bounds the time spent retrying: no retry starts later than RetryFor after
	// the first attempt (0: no bound).
	RetryFor time.Duration
	// Backoff spaces the retries (the zero value: Options.Backoff).
	Backoff Backoff
	// DeadLetter receives, with extensions saying why, each event the sensor refused for good
	// or did not take within the bounds; it is retried until it takes it. Without one, such
	// an event is dropped, logged and counted.
	DeadLetter Sender
}

// exhausted tells whether a delivery that made attempts, the first of them at since ago,
// is out of retries when the next would wait wait.
func (p Policy) exhausted(attempts int, since, wait time.Duration) bool {
	return (p.MaxAttempts > 0 && attempts >= p.MaxAttempts) || (p.RetryFor > 0 && since+wait > p.RetryFor)
}

// Outcome is how an event ended for the sensors.
type Outcome int

const (
	// Delivered: every sensor took the event.
	Delivered Outcome = iota
	// Dropped: some sensor's policy gave the event up, to its dead-letter sink or to
	// nothing; the others took it.
	Dropped
)

func (o Outcome) String() string {
	if o == Dropped {
		return "dropped"
	}
	return "delivered"
}

// Why a policy gave an event up: the label values of the dropped and dead-lettered series.
const (
	reasonRejected  = "rejected"          // an answer not worth retrying
	reasonExhausted = "retries_exhausted" // retryable answers until the policy's bounds
)

// AnswerError is a sensor's answer refusing an event: an HTTP status outside 2xx.
type AnswerError struct {
	Code int
	Err  error
}

func (e *AnswerError) Error() string { return e.Err.Error() }
func (e *AnswerError) Unwrap() error { return e.Err }

// Retryable tells whether a failed delivery is worth another attempt: anything but an
// answer, or an answer that says the sensor may take the event later (5xx; 404, 409 and
// 429, which a sensor being deployed or overloaded gives). Any other answer refuses the
// event for good.
func Retryable(err error) bool {
	var a *AnswerError
	if !errors.As(err, &a) {
		return true
	}
	switch a.Code {
	case 404, 409, 429:
		return true
	}
	return a.Code >= 500
}
