package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"
)

// target is one way to the sensor (or, for bare, no way at all).
type target struct {
	name string
	url  string
	// e2e: its events reach the sensor, where latency and loss are measured; otherwise the
	// latency is the posters' round trip.
	e2e     bool
	procs   []*proc      // whose CPU the run accounts
	gateway *gatewayPath // of a gateway path
}

// result is one run's figures.
type result struct {
	target    target
	load      load
	posted    *posted
	delivered int // distinct events of the run at the sensor that were answered 200
	lost      int // answered 200, never at the sensor
	unacked   int // at the sensor, but not answered 200 (a retry would duplicate them)
	dups      int
	perSecond float64
	// roundRates is events/s per round: paths take turns, so the ratio of two paths' rates
	// in the same round shows how much the machine's load moved the overall one.
	roundRates []float64
	latency    []time.Duration // sorted: end to end (e2e), round trip otherwise
	rtt        []time.Duration // sorted: the posters' round trips
	cpu        map[string]time.Duration
	rw         map[string]int64 // read and write system calls, by process
	window     time.Duration
}

// measure posts per l and waits for the sensor to settle.
func measure(ctx context.Context, client *http.Client, a *arrivals, t target, run string, l load) (*result, error) {
	before := map[string]usage{}
	for _, p := range t.procs {
		u, err := p.usage()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p.name, err)
		}
		before[p.name] = u
	}
	posted := post(ctx, client, t.url, run, l)
	r := &result{target: t, load: l, posted: posted, cpu: map[string]time.Duration{}, rw: map[string]int64{}}
	r.rtt = sorted(posted.rtt)
	end := posted.end
	if t.e2e {
		a.settle(run, len(posted.ok), 3*time.Second)
		latency, dups, last := a.snapshot(run)
		r.dups = dups
		ok := make(map[int64]bool, len(posted.ok))
		for _, seq := range posted.ok {
			ok[seq] = true
			if d, found := latency[seq]; found {
				r.delivered++
				r.latency = append(r.latency, d)
			} else {
				r.lost++
			}
		}
		for seq := range latency {
			if !ok[seq] {
				r.unacked++
			}
		}
		slices.Sort(r.latency)
		if last.After(end) {
			end = last
		}
	} else {
		r.delivered = len(posted.ok)
		r.latency = slices.Clone(r.rtt)
	}
	r.window = end.Sub(posted.start)
	r.perSecond = float64(r.delivered) / r.window.Seconds()
	r.roundRates = []float64{r.perSecond}
	for _, p := range t.procs {
		u, err := p.usage()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p.name, err)
		}
		r.cpu[p.name] = u.cpu - before[p.name].cpu
		r.rw[p.name] = u.rw - before[p.name].rw
	}
	return r, nil
}

// roundRatios lists r's events/s over base's, round by round.
func roundRatios(r, base *result) string {
	var out []string
	for i := range min(len(r.roundRates), len(base.roundRates)) {
		if base.roundRates[i] > 0 {
			out = append(out, fmt.Sprintf("%.2f", r.roundRates[i]/base.roundRates[i]))
		}
	}
	return strings.Join(out, " ")
}

// cpuPerEvent is the CPU of all the run's processes per event delivered.
func (r *result) cpuPerEvent() time.Duration {
	var sum time.Duration
	for _, c := range r.cpu {
		sum += c
	}
	return sum / time.Duration(max(r.delivered, 1))
}

// merge adds round b to the figures so far (r nil: b is the first round).
func (r *result) merge(b *result) *result {
	if r == nil {
		return b
	}
	r.delivered += b.delivered
	r.lost += b.lost
	r.unacked += b.unacked
	r.dups += b.dups
	r.latency = sorted(append(r.latency, b.latency...))
	r.rtt = sorted(append(r.rtt, b.rtt...))
	for n, c := range b.cpu {
		r.cpu[n] += c
	}
	for n, c := range b.rw {
		r.rw[n] += c
	}
	r.window += b.window
	r.roundRates = append(r.roundRates, b.roundRates...)
	r.perSecond = float64(r.delivered) / r.window.Seconds()
	r.posted.errors += b.posted.errors
	r.posted.overdue += b.posted.overdue
	for code, n := range b.posted.refused {
		r.posted.refused[code] += n
	}
	return r
}

func sorted(d []time.Duration) []time.Duration {
	out := slices.Clone(d)
	slices.Sort(out)
	return out
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p * float64(len(sorted)-1))
	return sorted[i]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond)) }

func report(w io.Writer, o options, closed, fixed []*result, gateways []*gatewayPath, mem map[*proc][2]usage) {
	byName := func(rs []*result, name string) *result {
		for _, r := range rs {
			if r.target.name == name {
				return r
			}
		}
		return nil
	}
	table := func(title string, rs []*result) {
		fmt.Fprintf(w, "%s\n", title)
		fmt.Fprintf(w, "  %-12s %10s %9s %9s %9s %9s %9s %9s %8s %8s %s\n", "path", "events/s", "vs relay", "vs a0", "p50", "p99", "max", "rtt p99", "lost", "refused", "CPU and read+write syscalls per event")
		relay, unacked := byName(rs, "relay"), byName(rs, unackedPath)
		for _, r := range rs {
			ratio, vsUnacked := "-", "-"
			if relay != nil && relay.perSecond > 0 {
				ratio = fmt.Sprintf("%.0f%%", 100*r.perSecond/relay.perSecond)
			}
			if unacked != nil && unacked.perSecond > 0 && r.target.gateway != nil {
				vsUnacked = fmt.Sprintf("%.0f%%", 100*r.perSecond/unacked.perSecond)
			}
			var cpu []string
			names := make([]string, 0, len(r.cpu))
			for n := range r.cpu {
				names = append(names, n)
			}
			sort.Strings(names)
			for _, n := range names {
				if r.delivered > 0 {
					cpu = append(cpu, fmt.Sprintf("%s %.0fµs %.1frw", n, float64(r.cpu[n].Microseconds())/float64(r.delivered), float64(r.rw[n])/float64(r.delivered)))
				}
			}
			refused := 0
			for _, n := range r.posted.refused {
				refused += n
			}
			refused += r.posted.errors
			fmt.Fprintf(w, "  %-12s %10.0f %9s %9s %9s %9s %9s %9s %8d %8d %s\n", r.target.name, r.perSecond, ratio, vsUnacked,
				ms(percentile(r.latency, 0.5)), ms(percentile(r.latency, 0.99)), ms(percentile(r.latency, 1)),
				ms(percentile(r.rtt, 0.99)), r.lost, refused, strings.Join(cpu, ", "))
			if len(r.posted.refused) > 0 || r.posted.errors > 0 || r.unacked > 0 || r.dups > 0 || r.posted.overdue > 0 {
				fmt.Fprintf(w, "           refused by status %v, transport errors %d, delivered without 200 %d, duplicates %d, late sends %d\n",
					r.posted.refused, r.posted.errors, r.unacked, r.dups, r.posted.overdue)
			}
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w, "latency: bare = the posters' round trip; relay, benthos and gateway = post to the sensor's output line")
	table(fmt.Sprintf("closed loop, %d posters, %s:", o.posters, o.duration), closed)
	if len(fixed) > 0 {
		table(fmt.Sprintf("fixed rate, %d events/s, %s:", o.rate, o.rateDuration), fixed)
	}
	// Every process of every path, the baselines first: their RSS is what the gateway's and
	// the client's compare with.
	for _, r := range closed {
		for _, pr := range r.target.procs {
			m, ok := mem[pr]
			if !ok {
				continue
			}
			fmt.Fprintf(w, "  %-20s RSS at rest %.1f MiB (%.1f of it the binary's pages), peak %.1f MiB, CPU at max %.0f%% of a core\n", pr.name,
				float64(m[0].rssKiB)/1024, float64(m[0].fileKiB)/1024, float64(m[1].peakKiB)/1024, 100*r.cpu[pr.name].Seconds()/r.window.Seconds())
		}
	}

	// The goals, each with what was measured.
	fmt.Fprintln(w, "\ngoals:")
	check := func(ok bool, format string, args ...any) {
		mark := "PASS"
		if !ok {
			mark = "FAIL"
		}
		fmt.Fprintf(w, "  %s  %s\n", mark, fmt.Sprintf(format, args...))
	}
	if unacked, r := byName(closed, unackedPath), byName(closed, "gateway"); unacked != nil && r != nil && unacked.perSecond > 0 {
		ratio := r.perSecond / unacked.perSecond
		check(ratio >= 0.8, "acknowledged delivery (default flags) keeps >= 80%% of the throughput of --ack-window 0: %.0f%% (%.0f vs %.0f events/s)",
			100*ratio, r.perSecond, unacked.perSecond)
	}
	// Issue 13's goals are for the client's default flags (the gateway path); every path
	// must lose nothing.
	if g := byName(closed, "gateway"); g != nil && g.target.gateway != nil {
		fmt.Fprintf(w, "  gateway (default flags):\n")
		if relay := byName(closed, "relay"); relay != nil && relay.perSecond > 0 {
			ratio := g.perSecond / relay.perSecond
			check(ratio >= 0.8, "throughput >= 0.8x the bare relay's: %.2fx (%.0f vs %.0f events/s; by round: %s)", ratio, g.perSecond, relay.perSecond, roundRatios(g, relay))
			if b := byName(closed, "benthos"); b != nil && b.perSecond > 0 {
				check(g.perSecond > b.perSecond, "throughput above Benthos's: %.2fx (%.0f vs %.0f events/s; by round: %s)",
					g.perSecond/b.perSecond, g.perSecond, b.perSecond, roundRatios(g, b))
			}
			// The run is CPU-bound on cores that the path shares with the sensor and the
			// posters: throughput follows the CPU all of them spend per event.
			gCPU, relayCPU := g.cpuPerEvent(), relay.cpuPerEvent()
			fmt.Fprintf(w, "        CPU per event of every process (path, sensor, posters): %s vs the relay's %s, a ratio of %.2f\n",
				gCPU.Round(time.Microsecond), relayCPU.Round(time.Microsecond), float64(relayCPU)/float64(gCPU))
			p99, relayP99 := percentile(g.latency, 0.99), percentile(relay.latency, 0.99)
			check(p99 <= 3*relayP99, "e2e p99 at full load <= 3x the relay's: %.2fx (%s vs %s)", float64(p99)/float64(relayP99), ms(p99), ms(relayP99))
		}
		if relay, r := byName(fixed, "relay"), byName(fixed, "gateway"); relay != nil && r != nil {
			d := percentile(r.latency, 0.99) - percentile(relay.latency, 0.99)
			check(d <= time.Millisecond/2, "e2e p99 at %d events/s within 0.5 ms of the relay's: %s vs %s (%+.2f ms)", o.rate,
				ms(percentile(r.latency, 0.99)), ms(percentile(relay.latency, 0.99)), float64(d)/float64(time.Millisecond))
		}
		webhook, client := mem[g.target.gateway.webhook], mem[g.target.gateway.client]
		peak := webhook[1].peakKiB + client[1].peakKiB
		// Of a baseline's processes, only the baseline itself was measured at rest (not the
		// sensor or the posters it shares).
		baselineMem := func(name string) (m [2]usage) {
			if r := byName(closed, name); r != nil {
				for _, pr := range r.target.procs {
					if u, ok := mem[pr]; ok {
						m = u
					}
				}
			}
			return m
		}
		relayMem := baselineMem("relay")
		baselines := ""
		if relayMem[1].peakKiB > 0 {
			baselines = fmt.Sprintf("; the relay's %.1f MiB", float64(relayMem[1].peakKiB)/1024)
		}
		if m := baselineMem("benthos"); m[1].peakKiB > 0 {
			baselines += fmt.Sprintf(", Benthos's %.1f MiB", float64(m[1].peakKiB)/1024)
		}
		check(peak <= 40<<10, "gateway + client RSS under load <= 40 MiB: %.1f MiB (%.1f + %.1f%s)", float64(peak)/1024,
			float64(webhook[1].peakKiB)/1024, float64(client[1].peakKiB)/1024, baselines)
		// The binaries' pages are a floor no tuning of the heap moves: say how much of the
		// peak they are (as measured at rest), and what the rest is beside the relay's.
		if relayMem[1].peakKiB > 0 {
			pages := webhook[0].fileKiB + client[0].fileKiB
			fmt.Fprintf(w, "        of it the two binaries' pages %.1f MiB (the relay's %.1f), the rest %.1f MiB (the relay's %.1f)\n",
				float64(pages)/1024, float64(relayMem[0].fileKiB)/1024, float64(peak-pages)/1024, float64(relayMem[1].peakKiB-relayMem[0].fileKiB)/1024)
		}
	}
	for _, g := range gateways {
		lost := 0
		for _, r := range append(slices.Clone(closed), fixed...) {
			if r.target.gateway == g {
				lost += r.lost
			}
		}
		check(lost == 0, "%s: no event answered 200 is lost: %d lost", g.name, lost)
	}
}
