package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/eventgate/eventgate/pkg/sensorsink"
	"github.com/eventgate/eventgate/pkg/testenv"
)

// benchAhead is how many records the full-load producer may be ahead of the sensor: enough
// to keep every stage busy, few enough that the broker is not what is measured.
const benchAhead = 2000

// benchPacedRate is the paced runs' rate, below what either mode can carry here, so that
// their latency is the path's and not a queue's.
const benchPacedRate = 500

// BenchmarkBrokerToSensor measures records from the broker to a sensor through the gateway
// server (a consumer group) and the real gateway-client, in both of the client's modes, in
// the same run: "unacked" (--ack-window 0: StartEventSource, offsets committed at
// hand-off) and "acked" (the default: committed once the sensor took them). "full" produces
// as fast as the path takes them (events/s, and the latency of a full pipeline), "paced"
// at benchPacedRate (the path's own end-to-end latency). Latency is from the producer's
// send to the sensor's receipt. Each load runs in rounds (EVENTGATE_BENCH_ROUNDS, default
// 3) that take turns between the modes, so that a change in the machine's load weighs on
// both:
//
//	go test -run '^$' -bench BrokerToSensor -benchtime 20000x ./services/gateways/kafka
func BenchmarkBrokerToSensor(b *testing.B) {
	br := startBroker(b, nil)
	gw := testenv.StartGateway(b, gateway{})
	admin, err := sarama.NewClusterAdmin([]string{br.addr()}, sarama.NewConfig())
	if err != nil {
		b.Fatal(err)
	}
	defer admin.Close()
	var runs atomic.Int64
	modes := []struct {
		name string
		args []string
	}{
		{name: "unacked", args: []string{"--ack-window", "0"}},
		{name: "acked"},
	}
	rounds := 3
	if n, err := strconv.Atoi(os.Getenv("EVENTGATE_BENCH_ROUNDS")); err == nil && n > 0 {
		rounds = n
	}
	for _, load := range []string{"full", "paced"} {
		for range rounds {
			for _, mode := range modes {
				b.Run(load+"/"+mode.name, func(b *testing.B) {
					run := runs.Add(1)
					topic := fmt.Sprintf("e2e-%d", run)
					if err := admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: 1}, false); err != nil {
						b.Fatal(err)
					}
					sensor := startBenchSensor(b, b.N)
					client := testenv.StartClient(b, testenv.ClientConfig{
						GatewayType: gatewayType,
						Servers:     []string{gw.Addr},
						Sensors:     []string{sensor.url},
						Sources: map[string]string{"bench": fmt.Sprintf("url: %s\ntopic: %s\njsonBody: true\nconsumerGroup: {groupName: %s, oldest: true}",
							br.addr(), topic, topic)},
						Args: mode.args,
					})
					p := newBenchProducer(b, br.addr(), topic)
					// The source has joined its group and the client delivers: the timed part
					// is records only.
					p.send(-1)
					sensor.waitWarm(b)

					clientCPU, ownCPU := processCPU(b, client.Cmd.Process.Pid), processCPU(b, os.Getpid())
					b.ResetTimer()
					go func() {
						if load == "paced" {
							p.paced(b.N, benchPacedRate)
						} else {
							p.windowed(b.N, sensor.room)
						}
					}()
					sensor.waitAll(b)
					b.StopTimer()
					b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
					p50, p99 := sensor.percentiles()
					b.ReportMetric(float64(p50.Microseconds())/1000, "p50-ms")
					b.ReportMetric(float64(p99.Microseconds())/1000, "p99-ms")
					// CPU per event: the gateway-client's, and this process's (broker, gateway
					// server, sensor and producer).
					b.ReportMetric(float64((processCPU(b, client.Cmd.Process.Pid)-clientCPU).Microseconds())/float64(b.N), "client-cpu-µs/ev")
					b.ReportMetric(float64((processCPU(b, os.Getpid())-ownCPU).Microseconds())/float64(b.N), "rest-cpu-µs/ev")
					if d := sensor.duplicates.Load(); d > 0 {
						b.ReportMetric(float64(d), "duplicates")
					}
				})
			}
		}
	}
}

// benchProducer writes the benchmark's records: JSON of about 100 bytes holding their
// number and their send time.
type benchProducer struct {
	producer sarama.AsyncProducer
	topic    string
	pad      string
}

func newBenchProducer(b *testing.B, addr, topic string) *benchProducer {
	cfg := sarama.NewConfig()
	cfg.Producer.RequiredAcks = sarama.WaitForLocal
	cfg.Producer.Flush.Frequency = time.Millisecond
	p, err := sarama.NewAsyncProducer([]string{addr}, cfg)
	if err != nil {
		b.Fatal(err)
	}
	go func() {
		for err := range p.Errors() {
			b.Errorf("produce: %v", err)
		}
	}()
	b.Cleanup(func() { p.Close() })
	return &benchProducer{producer: p, topic: topic, pad: strings.Repeat("x", 50)}
}

func (p *benchProducer) send(seq int) {
	value := fmt.Sprintf(`{"seq":%d,"sent":%d,"pad":%q}`, seq, time.Now().UnixNano(), p.pad)
	p.producer.Input() <- &sarama.ProducerMessage{Topic: p.topic, Value: sarama.StringEncoder(value)}
}

// windowed sends n records, each once the sensor made room (at most benchAhead ahead).
func (p *benchProducer) windowed(n int, room chan struct{}) {
	for i := range n {
		room <- struct{}{}
		p.send(i)
	}
}

// paced sends n records at rate per second, in 10 ms steps.
func (p *benchProducer) paced(n, rate int) {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	began, sent := time.Now(), 0
	for sent < n {
		<-tick.C
		due := min(n, int(time.Since(began).Seconds()*float64(rate)))
		for ; sent < due; sent++ {
			p.send(sent)
		}
	}
}

// benchSensor is the real sensor sink behind a front that notes, for every record the
// sink accepted, its latency: the sink's answer minus the record's send time.
type benchSensor struct {
	sink *sensorsink.Sink
	url  string
	want int
	room chan struct{} // one token per record sent and not yet received

	mu         sync.Mutex
	latency    []time.Duration // by seq
	seen       []bool
	received   int
	warm, all  chan struct{}
	duplicates atomic.Int64
}

var benchMark = regexp.MustCompile(`"seq":(-?\d+),"sent":(\d+)`)

func startBenchSensor(b *testing.B, n int) *benchSensor {
	s := &benchSensor{
		sink: sensorsink.New(sensorsink.WithLogger(testenv.Logger(b)), sensorsink.WithKeep(1)),
		want: n, room: make(chan struct{}, benchAhead),
		latency: make([]time.Duration, n), seen: make([]bool, n),
		warm: make(chan struct{}), all: make(chan struct{}),
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(s.serve)}
	go srv.Serve(lis)
	b.Cleanup(func() { srv.Close() })
	s.url = "http://" + lis.Addr().String()
	return s
}

func (s *benchSensor) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
	s.sink.ServeHTTP(rec, r)
	if rec.status != http.StatusOK {
		return
	}
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range benchMark.FindAllSubmatch(body, -1) {
		seq, _ := strconv.Atoi(string(m[1]))
		sent, _ := strconv.ParseInt(string(m[2]), 10, 64)
		switch {
		case seq < 0:
			closeOnce(s.warm)
			continue
		case seq >= s.want:
			continue
		case s.seen[seq]:
			s.duplicates.Add(1)
			continue
		}
		s.seen[seq] = true
		s.latency[seq] = now.Sub(time.Unix(0, sent))
		s.received++
		select {
		case <-s.room:
		default:
		}
		if s.received == s.want {
			close(s.all)
		}
	}
}

func closeOnce(c chan struct{}) {
	select {
	case <-c:
	default:
		close(c)
	}
}

func (s *benchSensor) waitWarm(b *testing.B) {
	select {
	case <-s.warm:
	case <-time.After(time.Minute):
		b.Fatal("the warm-up record did not reach the sensor within a minute")
	}
}

func (s *benchSensor) waitAll(b *testing.B) {
	for {
		s.mu.Lock()
		got := s.received
		s.mu.Unlock()
		select {
		case <-s.all:
			return
		case <-time.After(time.Minute):
			s.mu.Lock()
			now := s.received
			s.mu.Unlock()
			if now == got {
				b.Fatalf("the sensor got %d of %d records and nothing more for a minute", now, s.want)
			}
		}
	}
}

func (s *benchSensor) percentiles() (p50, p99 time.Duration) {
	s.mu.Lock()
	sorted := slices.Clone(s.latency)
	s.mu.Unlock()
	slices.Sort(sorted)
	return sorted[len(sorted)/2], sorted[len(sorted)*99/100]
}

// statusRecorder notes the status the sink answered.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

// processCPU is the CPU time (user and system) process pid has used so far.
func processCPU(b *testing.B, pid int) time.Duration {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// Fields after the command's closing parenthesis: utime and stime are the 12th and 13th.
	fields := strings.Fields(string(raw[bytes.LastIndexByte(raw, ')')+1:]))
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	return time.Duration(utime+stime) * time.Second / clockTicks
}

// clockTicks is the kernel's USER_HZ, the unit of /proc's CPU times: 100 on Linux.
const clockTicks = 100
