package main

import (
	"bufio"
	"encoding/json"
	"io"
	"sync"
	"time"
)

// mark is what every posted body carries, so that the sensor's output tells which run and
// request an event came from and when it was sent.
type mark struct {
	Run  string `json:"run"`
	Seq  int64  `json:"seq"`
	Sent int64  `json:"sent"` // Unix nanoseconds
}

// sensorLine is one event as the sensor prints it (--output json): the webhook gateway's
// payload holds the posted body under "body", the relay posts the body itself.
type sensorLine struct {
	Data struct {
		mark
		Body *mark `json:"body"`
	} `json:"data"`
}

// arrivals records the events the sensor printed, by run, with their end-to-end latency
// (post to the sensor's output reaching the bench).
type arrivals struct {
	mu     sync.Mutex
	byRun  map[string]*runArrivals
	errors int
}

type runArrivals struct {
	latency map[int64]time.Duration // by seq
	dups    int
	last    time.Time
}

func newArrivals() *arrivals { return &arrivals{byRun: map[string]*runArrivals{}} }

// read consumes the sensor's stdout until it closes.
func (a *arrivals) read(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 8<<20)
	for sc.Scan() {
		now := time.Now()
		var l sensorLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			a.mu.Lock()
			a.errors++
			a.mu.Unlock()
			continue
		}
		m := l.Data.mark
		if l.Data.Body != nil {
			m = *l.Data.Body
		}
		a.mu.Lock()
		ra := a.byRun[m.Run]
		if ra == nil {
			ra = &runArrivals{latency: map[int64]time.Duration{}}
			a.byRun[m.Run] = ra
		}
		if _, dup := ra.latency[m.Seq]; dup {
			ra.dups++
		} else {
			ra.latency[m.Seq] = now.Sub(time.Unix(0, m.Sent))
		}
		ra.last = now
		a.mu.Unlock()
	}
}

// count is how many distinct events of run arrived.
func (a *arrivals) count(run string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	if ra := a.byRun[run]; ra != nil {
		return len(ra.latency)
	}
	return 0
}

// settle waits until run has want events, or until none arrived for quiet.
func (a *arrivals) settle(run string, want int, quiet time.Duration) {
	last, lastChange := -1, time.Now()
	for {
		n := a.count(run)
		if n >= want {
			return
		}
		if n != last {
			last, lastChange = n, time.Now()
		} else if time.Since(lastChange) > quiet {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// snapshot copies run's arrivals.
func (a *arrivals) snapshot(run string) (latency map[int64]time.Duration, dups int, last time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	ra := a.byRun[run]
	if ra == nil {
		return map[int64]time.Duration{}, 0, time.Time{}
	}
	latency = make(map[int64]time.Duration, len(ra.latency))
	for k, v := range ra.latency {
		latency[k] = v
	}
	return latency, ra.dups, ra.last
}
