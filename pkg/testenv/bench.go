package testenv

import (
	"testing"
	"time"
)

// Window publishes in the background at most a fixed number of messages ahead of the
// consumer: a benchmark of a broker that drops what a slow subscriber cannot hold then
// measures delivery, not drops.
type Window struct {
	credits chan struct{}
	errs    chan error
}

// PublishWindowed calls publish n times in the background, each time after taking one of
// window credits; the consumer gives one back with Credit per message it got. After the
// last, flush (when not nil) makes sure the broker has them all.
func PublishWindowed(n, window int, publish, flush func() error) *Window {
	w := &Window{credits: make(chan struct{}, window), errs: make(chan error, 1)}
	go func() {
		for range n {
			w.credits <- struct{}{}
			if err := publish(); err != nil {
				w.errs <- err
				return
			}
		}
		if flush != nil {
			w.errs <- flush()
			return
		}
		w.errs <- nil
	}()
	return w
}

// Credit gives back a credit: the consumer got a message.
func (w *Window) Credit() { <-w.credits }

// Wait returns, once the publisher is done, the error that stopped it, if any.
func (w *Window) Wait() error { return <-w.errs }

// ConsumeStream reads b.N events of s, each within a minute, calls got (when not nil)
// after each, and reports their rate (msgs/s) over the benchmark's timed part.
func ConsumeStream(b *testing.B, s *Stream, got func()) {
	b.Helper()
	for range b.N {
		s.Next(b, time.Minute)
		if got != nil {
			got()
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}
