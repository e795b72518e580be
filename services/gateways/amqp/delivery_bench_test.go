package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/eventgate/eventgate/pkg/sensorsink"
	"github.com/eventgate/eventgate/pkg/testenv"
	"github.com/eventgate/eventgate/pkg/testenv/amqpenv"
)

// deliveryWindow is how many messages the publisher may be ahead of the sensor at full
// load: enough for a backlog in the queue on either path (the broker's prefetch bounds
// what the acknowledged path holds beyond it), little enough that the latency at full
// load, about deliveryWindow / throughput, is not all queueing.
const deliveryWindow = 500

// pacedRate is the paced runs' messages per second, below what either path carries here,
// so that their latency is the path's own and not a queue's.
const pacedRate = 500

// BenchmarkBrokerToSensor measures the whole path, RabbitMQ -> gateway server -> the real
// gateway-client -> an HTTP sensor, in events per second and end-to-end latency (publish to
// the sensor's record), in both of the client's modes: "unacked" (--ack-window 0, the
// client calls StartEventSource: each message is acked to the broker at hand-off) and
// "acked" (the default, StreamEventSource: each message is acked once the sensor took it).
// Both run the gateway's defaults (prefetch DefaultPrefetch) on a durable queue, with
// messages of about 100 bytes published as they go: "full" as fast as they arrive, at most
// deliveryWindow ahead; "paced" at pacedRate. Each load runs in rounds
// (EVENTGATE_BENCH_ROUNDS, default 3) that take turns between the modes, so that a change
// in the machine's load weighs on both. The CPU per event is the client's, and this
// process's (the gateway server, the sensor and the publisher):
//
//	go test -run '^$' -bench BrokerToSensor -benchtime 10000x ./services/gateways/amqp
func BenchmarkBrokerToSensor(b *testing.B) {
	broker := amqpenv.Start(b)
	gw := testenv.StartGateway(b, gateway{})
	timed := &arrivals{}
	sensor := testenv.StartSensor(b, sensorsink.Endpoints{}, sensorsink.WithOutput(timed, sensorsink.FormatJSON))
	runs := 0
	modes := []struct {
		name string
		args []string
	}{
		{"unacked", []string{"--ack-window", "0"}},
		{"acked", nil},
	}
	rounds := 3
	if n, err := strconv.Atoi(os.Getenv("EVENTGATE_BENCH_ROUNDS")); err == nil && n > 0 {
		rounds = n
	}
	for _, load := range []struct {
		name string
		rate int // messages a second; 0: as fast as they arrive
	}{{"full", 0}, {"paced", pacedRate}} {
		for range rounds {
			for _, mode := range modes {
				b.Run(load.name+"/"+mode.name, func(b *testing.B) {
					runs++
					run := fmt.Sprintf("e2e-%d", runs)
					declareQueue(b, broker.URL, run, "direct", run, "k")
					pub := startPublisher(b, broker.URL, run, run)
					timed.start(run, deliveryWindow+1)
					data := fmt.Sprintf("url: %s\nexchangeName: %s\nexchangeType: direct\nroutingKey: k\njsonBody: true\nqueueDeclare: {name: %s, durable: true}", broker.URL, run, run)
					client := testenv.StartClient(b, testenv.ClientConfig{
						GatewayType: gatewayType, Servers: []string{gw.Addr}, Sensors: []string{sensor.URL},
						Sources: map[string]string{"bench": data}, Args: mode.args,
					})
					// One message through before the clock starts: the source is consuming.
					if err := pub.publish(); err != nil {
						b.Fatal(err)
					}
					timed.wait(b)

					clientCPU, selfCPU := processCPU(b, client.Cmd.Process.Pid), ownCPU()
					b.ResetTimer()
					publish := pub.publish
					if load.rate > 0 {
						start := time.Now()
						publish = func() error {
							time.Sleep(time.Until(start.Add(time.Duration(pub.seq) * time.Second / time.Duration(load.rate))))
							return pub.publish()
						}
					}
					w := testenv.PublishWindowed(b.N, deliveryWindow, publish, nil)
					for range b.N {
						timed.wait(b)
						w.Credit()
					}
					b.StopTimer()
					clientCPU, selfCPU = processCPU(b, client.Cmd.Process.Pid)-clientCPU, ownCPU()-selfCPU
					if err := w.Wait(); err != nil {
						b.Fatal(err)
					}
					latency, dups := timed.result()
					latency = latency[1:] // the warm-up's
					slices.Sort(latency)
					b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
					b.ReportMetric(ms(latency[len(latency)/2]), "p50-ms")
					b.ReportMetric(ms(latency[len(latency)*99/100]), "p99-ms")
					b.ReportMetric(float64(dups), "dups")
					b.ReportMetric(float64(clientCPU.Microseconds())/float64(b.N), "client-cpu-µs/event")
					b.ReportMetric(float64(selfCPU.Microseconds())/float64(b.N), "gateway+sensor-cpu-µs/event")
				})
			}
		}
	}
}

// processCPU is the CPU time pid used so far (user and system), from /proc.
func processCPU(b *testing.B, pid int) time.Duration {
	b.Helper()
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// The fields after the command, which is in parentheses and may hold spaces.
	fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	var ticks int64
	for _, f := range fields[11:13] { // utime, stime
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			b.Fatalf("/proc/%d/stat: %v", pid, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / clockTicks
}

// clockTicks is USER_HZ, the unit of /proc's CPU times: 100 on Linux.
const clockTicks = 100

// ownCPU is the CPU time this process (the gateway server, the sensor and the publisher)
// used so far.
func ownCPU() time.Duration {
	var u syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &u)
	return time.Duration(u.Utime.Nano() + u.Stime.Nano())
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// mark is the body of a benchmark message: its run and number, and when it was published.
type mark struct {
	Run  string `json:"run"`
	Seq  int    `json:"seq"`
	Sent int64  `json:"sent"` // Unix nanoseconds
	Pad  string `json:"pad"`
}

// publisher publishes the marks of one run on its own channel, as fast as it is asked to.
type publisher struct {
	ch       *amqp.Channel
	exchange string
	run      string
	seq      int
}

func startPublisher(b *testing.B, url, exchange, run string) *publisher {
	b.Helper()
	ch, closeConn := brokerChannel(b, url)
	b.Cleanup(closeConn)
	return &publisher{ch: ch, exchange: exchange, run: run}
}

func (p *publisher) publish() error {
	p.seq++
	body, err := json.Marshal(mark{Run: p.run, Seq: p.seq, Sent: time.Now().UnixNano(), Pad: padding})
	if err != nil {
		return err
	}
	return p.ch.PublishWithContext(context.Background(), p.exchange, "k", false, false, amqp.Publishing{ContentType: "application/json", Body: body})
}

// padding makes a mark about 100 bytes long.
var padding = strings.Repeat("x", 40)

// arrivals is the sensor's output (one CloudEvent in JSON a line): it times the marks of
// the current run as they arrive, and signals each first arrival.
type arrivals struct {
	mu      sync.Mutex
	run     string
	seen    map[int]bool
	latency []time.Duration
	dups    int
	fresh   chan struct{}
}

// start times run from now on; capacity bounds its arrivals not yet waited for.
func (a *arrivals) start(run string, capacity int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.run, a.seen, a.latency, a.dups, a.fresh = run, map[int]bool{}, nil, 0, make(chan struct{}, capacity)
}

func (a *arrivals) Write(line []byte) (int, error) {
	now := time.Now()
	var ev struct {
		Data struct {
			Body mark `json:"body"`
		} `json:"data"`
	}
	if err := json.Unmarshal(line, &ev); err != nil {
		return 0, err
	}
	m := ev.Data.Body
	a.mu.Lock()
	defer a.mu.Unlock()
	switch {
	case m.Run != a.run:
	case a.seen[m.Seq]:
		a.dups++
	default:
		a.seen[m.Seq] = true
		a.latency = append(a.latency, now.Sub(time.Unix(0, m.Sent)))
		a.fresh <- struct{}{} // never blocks: the publisher is at most capacity ahead
	}
	return len(line), nil
}

// wait waits for the next first arrival of the run.
func (a *arrivals) wait(b *testing.B) {
	b.Helper()
	a.mu.Lock()
	fresh := a.fresh
	a.mu.Unlock()
	select {
	case <-fresh:
	case <-time.After(time.Minute):
		b.Fatal("no event at the sensor within a minute")
	}
}

// result is the run's latencies in order of arrival, and its duplicates.
func (a *arrivals) result() ([]time.Duration, int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.latency), a.dups
}
