package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// load is how a run posts: closed loop (each poster posts again as soon as it has its
// answer: the highest throughput the target sustains) or at a fixed rate (latency at a
// given load, which closed-loop numbers hide behind queueing).
type load struct {
	posters  int
	duration time.Duration
	rate     int // events per second; 0 is closed loop
	size     int // body bytes (at least the mark's)
}

// posted is what the posters saw in one run.
type posted struct {
	ok       []int64 // seqs answered 200
	refused  map[int]int
	errors   int
	rtt      []time.Duration // of the 200s
	start    time.Time
	end      time.Time
	overdue  int // fixed rate: sends that started more than 1 ms late (posters all busy)
	lastSent time.Time
}

// newPosterClient keeps one connection per poster alive across requests, so that the runs
// measure the path and not connection set-up (net/http keeps only 2 idle per host by default).
func newPosterClient(posters int) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = posters
	tr.MaxIdleConns = posters * 2
	// No "Accept-Encoding: gzip", as webhook senders do not ask for one: Benthos's
	// http_server would otherwise gzip every empty answer with a new compressor, most of its
	// CPU per event.
	tr.DisableCompression = true
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// post runs l against url, with bodies marked with run.
func post(ctx context.Context, client *http.Client, url, run string, l load) *posted {
	var seq atomic.Int64
	pad := ""
	if over := l.size - 64; over > 0 {
		pad = strings.Repeat("x", over)
	}
	ctx, cancel := context.WithTimeout(ctx, l.duration)
	defer cancel()

	// Fixed rate: a ticker hands out send times, posters take them; a send time that finds
	// every poster busy waits for one and is counted as overdue.
	var slots chan time.Time
	if l.rate > 0 {
		slots = make(chan time.Time, l.posters)
		go func() {
			defer close(slots)
			interval := time.Second / time.Duration(l.rate)
			next := time.Now()
			for {
				next = next.Add(interval)
				if d := time.Until(next); d > 0 {
					t := time.NewTimer(d)
					select {
					case <-t.C:
					case <-ctx.Done():
						t.Stop()
						return
					}
				}
				select {
				case slots <- next:
				case <-ctx.Done():
					return
				}
			}
		}()
	}

	type local struct {
		ok       []int64
		rtt      []time.Duration
		refused  map[int]int
		errors   int
		overdue  int
		lastSent time.Time
	}
	results := make([]local, l.posters)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range l.posters {
		wg.Go(func() {
			res := &results[i]
			res.refused = map[int]int{}
			var body bytes.Buffer
			for ctx.Err() == nil {
				if slots != nil {
					at, open := <-slots
					if !open {
						return
					}
					if time.Since(at) > time.Millisecond {
						res.overdue++
					}
				}
				n := seq.Add(1)
				sent := time.Now()
				body.Reset()
				body.WriteString(`{"run":"`)
				body.WriteString(run)
				body.WriteString(`","seq":`)
				body.WriteString(strconv.FormatInt(n, 10))
				body.WriteString(`,"sent":`)
				body.WriteString(strconv.FormatInt(sent.UnixNano(), 10))
				body.WriteString(`,"pad":"`)
				body.WriteString(pad)
				body.WriteString(`"}`)
				// Not bound to ctx: a request in flight when the run ends is finished, so
				// that every event has its answer.
				req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body.Bytes()))
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				if err != nil {
					res.errors++
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					res.ok = append(res.ok, n)
					res.rtt = append(res.rtt, time.Since(sent))
				} else {
					res.refused[resp.StatusCode]++
				}
				res.lastSent = sent
			}
		})
	}
	wg.Wait()
	p := &posted{refused: map[int]int{}, start: start, end: time.Now()}
	for _, r := range results {
		p.ok = append(p.ok, r.ok...)
		p.rtt = append(p.rtt, r.rtt...)
		p.errors += r.errors
		p.overdue += r.overdue
		for code, n := range r.refused {
			p.refused[code] += n
		}
		if r.lastSent.After(p.lastSent) {
			p.lastSent = r.lastSent
		}
	}
	return p
}
