package supervisor

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/eventgate/eventgate/pkg/cloudevent"
	"github.com/eventgate/eventgate/pkg/config"
	"github.com/eventgate/eventgate/pkg/dispatch"
	"github.com/eventgate/eventgate/pkg/sensorsink"
	"github.com/eventgate/eventgate/pkg/server"
	"github.com/eventgate/eventgate/pkg/testenv"
	"github.com/eventgate/eventgate/protos/gateways"
)

// tickGateway is a real gateway built on the framework: each source emits an event every
// `every`, numbered, tagged with the server's generation, until cancelled.
type tickGateway struct {
	generation string
	parses     atomic.Int64
	emitted    atomic.Int64
	mu         sync.Mutex
	parsed     map[string]int // source name -> parses
	running    map[string]int // source name -> running count
}

type tickConfig struct {
	Every string `json:"every"`
	Count int    `json:"count"`
}

func newTickGateway(generation string) *tickGateway {
	return &tickGateway{generation: generation, running: map[string]int{}, parsed: map[string]int{}}
}

func (*tickGateway) Type() string { return "tick" }

func (g *tickGateway) Parse(name, data string) (server.Source, error) {
	g.parses.Add(1)
	g.mu.Lock()
	g.parsed[name]++
	g.mu.Unlock()
	var cfg tickConfig
	if err := config.Decode("tick", data, &cfg); err != nil {
		return nil, err
	}
	every, err := time.ParseDuration(cfg.Every)
	if err != nil || every <= 0 {
		return nil, fmt.Errorf("tick.every: %q is not a positive duration", cfg.Every)
	}
	return &tickSource{gw: g, name: name, every: every, count: cfg.Count}, nil
}

func (g *tickGateway) runningSources() map[string]int {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := map[string]int{}
	for k, v := range g.running {
		if v > 0 {
			out[k] = v
		}
	}
	return out
}

type tickSource struct {
	gw    *tickGateway
	name  string
	every time.Duration
	count int
}

func (s *tickSource) Start(ctx context.Context, emit server.Emit) error {
	s.gw.mu.Lock()
	s.gw.running[s.name]++
	s.gw.mu.Unlock()
	defer func() {
		s.gw.mu.Lock()
		s.gw.running[s.name]--
		s.gw.mu.Unlock()
	}()
	t := time.NewTicker(s.every)
	defer t.Stop()
	for i := 0; s.count == 0 || i < s.count; i++ {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		err := emit(ctx, server.Event{Payload: []byte(strconv.Itoa(i)), Metadata: map[string]string{"generation": s.gw.generation}})
		if err != nil {
			return nil
		}
		s.gw.emitted.Add(1)
	}
	return nil
}

// pipeline wires a supervisor to a real sensor the way the gateway-client does.
func pipeline(t *testing.T, conn grpc.ClientConnInterface) (*Supervisor, *testenv.Sensor) {
	t.Helper()
	sensor := testenv.StartSensor(t, sensorsink.Endpoints{})
	sender, err := dispatch.NewHTTPSender(sensor.URL)
	if err != nil {
		t.Fatal(err)
	}
	backoff := dispatch.Backoff{Initial: 10 * time.Millisecond, Max: 100 * time.Millisecond, Factor: 2}
	d := dispatch.New([]dispatch.Target{{Name: "sensor", Sender: sender}}, dispatch.Options{Backoff: backoff, Log: testenv.Logger(t)})
	t.Cleanup(func() { d.Close(0) })
	gw := cloudevent.Gateway{Name: "tick-gateway", Type: "tick"}
	handle := func(ctx context.Context, source string, ev *gateways.Event) error {
		ce, err := cloudevent.From(gw, ev, time.Now())
		if err != nil {
			return err
		}
		return d.Dispatch(ctx, source, ce)
	}
	sup := New(conn, handle, Options{Backoff: backoff, Log: testenv.Logger(t)})
	t.Cleanup(sup.Stop)
	return sup, sensor
}

// received counts the sensor's events per subject and generation.
func received(s *testenv.Sensor) map[string]int {
	out := map[string]int{}
	for _, ev := range s.Received() {
		gen, _ := ev.Extensions()["generation"].(string)
		out[ev.Subject()+"/"+gen]++
	}
	return out
}

func TestEventsFlowFromSourcesToTheSensor(t *testing.T) {
	gw := testenv.StartGateway(t, newTickGateway("1"))
	sup, sensor := pipeline(t, gw.Conn)
	started, _ := sup.Apply([]Source{{Name: "a", Data: "every: 5ms"}, {Name: "b", Data: "every: 5ms\ncount: 3"}})
	if strings.Join(started, ",") != "a,b" {
		t.Fatalf("started %v", started)
	}
	testenv.Eventually(t, 10*time.Second, 10*time.Millisecond, func() error {
		got := received(sensor)
		if got["a/1"] < 5 || got["b/1"] != 3 {
			return fmt.Errorf("sensor has %v", got)
		}
		return nil
	})
	for _, ev := range sensor.Received() {
		if ev.Source() != "tick-gateway" || ev.Type() != "tick" || ev.ID() == "" {
			t.Fatalf("CloudEvent attributes: %s", ev)
		}
	}
	testenv.Eventually(t, 10*time.Second, 10*time.Millisecond, func() error {
		for _, st := range sup.Statuses() {
			if st.Name == "b" && st.Phase != PhaseCompleted {
				return fmt.Errorf("b is %s (%s), want Completed after its 3 events", st.Phase, st.Message)
			}
		}
		return nil
	})
}

func TestApplyStopsOnlyWhatChanged(t *testing.T) {
	g := newTickGateway("1")
	gw := testenv.StartGateway(t, g)
	sup, _ := pipeline(t, gw.Conn)
	sup.Apply([]Source{{Name: "a", Data: "every: 10ms"}, {Name: "b", Data: "every: 10ms"}})
	waitRunning := func(want string) {
		t.Helper()
		testenv.Eventually(t, 10*time.Second, 5*time.Millisecond, func() error {
			if got := fmt.Sprint(g.runningSources()); got != want {
				return fmt.Errorf("running %s, want %s", got, want)
			}
			return nil
		})
	}
	waitRunning("map[a:1 b:1]")
	parsesBefore := g.parses.Load()

	started, stopped := sup.Apply([]Source{{Name: "a", Data: "every: 10ms"}, {Name: "b", Data: "every: 20ms"}, {Name: "c", Data: "every: 10ms"}})
	if fmt.Sprint(started, stopped) != "[b c] [b]" {
		t.Fatalf("started %v stopped %v, want [b c] [b]", started, stopped)
	}
	waitRunning("map[a:1 b:1 c:1]")
	// a was left alone: only b's and c's configs were parsed again (validate + start each).
	if n := g.parses.Load() - parsesBefore; n != 4 {
		t.Errorf("%d parses after the change, want 4 (b and c, validate and start)", n)
	}

	_, stopped = sup.Apply([]Source{{Name: "c", Data: "every: 10ms"}})
	if fmt.Sprint(stopped) != "[a b]" {
		t.Fatalf("stopped %v", stopped)
	}
	waitRunning("map[c:1]")
}

func TestInvalidSourceIsReportedAndNotRetried(t *testing.T) {
	g := newTickGateway("1")
	gw := testenv.StartGateway(t, g)
	sup, sensor := pipeline(t, gw.Conn)
	sup.Apply([]Source{{Name: "bad", Data: "every: -1s"}, {Name: "good", Data: "every: 5ms"}})
	testenv.Eventually(t, 10*time.Second, 5*time.Millisecond, func() error {
		sts := sup.Statuses()
		if len(sts) != 2 || sts[0].Phase != PhaseError || sts[0].Message != `invalid: tick.every: "-1s" is not a positive duration` {
			return fmt.Errorf("statuses %+v", sts)
		}
		return nil
	})
	// The good source carries on, and the bad one is not validated again.
	parsesOfBad := func() int {
		g.mu.Lock()
		defer g.mu.Unlock()
		return g.parsed["bad"]
	}
	parses := parsesOfBad()
	testenv.Eventually(t, 10*time.Second, 5*time.Millisecond, func() error {
		if n := received(sensor)["good/1"]; n < 20 {
			return fmt.Errorf("%d events from the good source", n)
		}
		return nil
	})
	if extra := parsesOfBad() - parses; extra != 0 {
		t.Errorf("the invalid source was parsed %d more times", extra)
	}
}

// A gateway server that dies and comes back on the same address gets its sources back
// without any config change.
func TestRestartedServerGetsItsSourcesBack(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	serve := func(lis net.Listener, generation string) (stop func()) {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			server.New(newTickGateway(generation), server.WithLogger(testenv.Logger(t)), server.WithShutdownTimeout(time.Second)).Serve(ctx, lis)
		}()
		return func() { cancel(); <-done }
	}
	stop := serve(lis, "1")

	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	sup, sensor := pipeline(t, conn)
	sup.Apply([]Source{{Name: "a", Data: "every: 5ms"}})
	testenv.Eventually(t, 10*time.Second, 5*time.Millisecond, func() error {
		if n := received(sensor)["a/1"]; n < 3 {
			return fmt.Errorf("%d events from the first server", n)
		}
		return nil
	})

	stop() // the server goes away mid-stream
	testenv.Eventually(t, 10*time.Second, 5*time.Millisecond, func() error {
		if st := sup.Statuses()[0]; st.Phase != PhaseError {
			return fmt.Errorf("status %s while the server is down", st.Phase)
		}
		return nil
	})
	lis2, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen again on %s: %v", addr, err)
	}
	defer serve(lis2, "2")()
	testenv.Eventually(t, 20*time.Second, 10*time.Millisecond, func() error {
		if n := received(sensor)["a/2"]; n < 3 {
			return fmt.Errorf("%d events from the restarted server", n)
		}
		if st := sup.Statuses()[0]; st.Phase != PhaseRunning {
			return fmt.Errorf("status %s", st.Phase)
		}
		return nil
	})
}

func TestSourceIDIsAHashOfNameAndData(t *testing.T) {
	a := Source{Name: "a", Data: "x"}
	if a.ID() != (Source{Name: "a", Data: "x", Version: "v0.10"}).ID() {
		t.Error("the version must not change the ID")
	}
	for _, other := range []Source{{Name: "a", Data: "y"}, {Name: "b", Data: "x"}, {Name: "ax", Data: ""}} {
		if other.ID() == a.ID() {
			t.Errorf("%+v has the same ID as %+v", other, a)
		}
	}
	got := SourcesFrom(map[string]string{"z": "1", "a": "2"}, "v0.10")
	if len(got) != 2 || got[0].Name != "a" || got[1].Version != "v0.10" {
		t.Errorf("SourcesFrom = %+v", got)
	}
}

// The sensor is down for 10 s while the source keeps emitting: afterwards every event of
// the source has arrived exactly once, in order.
func TestSensorOutageLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("10 s outage")
	}
	g := newTickGateway("1")
	gw := testenv.StartGateway(t, g)
	sup, sensor := pipeline(t, gw.Conn)
	sup.Apply([]Source{{Name: "a", Data: "every: 20ms"}})
	testenv.Eventually(t, 10*time.Second, 5*time.Millisecond, func() error {
		if n := received(sensor)["a/1"]; n < 5 {
			return fmt.Errorf("%d events before the outage", n)
		}
		return nil
	})
	sensor.SetMode(sensorsink.ModeFail)
	down := time.Now()
	before := len(sensor.Received())
	for time.Since(down) < 10*time.Second { // the outage itself: a span of time, not a wait for a condition
		time.Sleep(100 * time.Millisecond)
	}
	if n := len(sensor.Received()); n != before {
		t.Fatalf("a failing sensor recorded %d events", n-before)
	}
	sensor.SetMode(sensorsink.ModeOK)
	emittedByNow := int(g.emitted.Load())
	if emittedByNow < before+100 {
		t.Fatalf("only %d events emitted during the outage", emittedByNow-before)
	}
	testenv.Eventually(t, 30*time.Second, 10*time.Millisecond, func() error {
		if n := len(sensor.Received()); n < emittedByNow {
			return fmt.Errorf("%d events after the outage, want at least %d", n, emittedByNow)
		}
		return nil
	})
	sup.Stop()
	for i, ev := range sensor.Received() {
		if got := string(ev.Data()); got != strconv.Itoa(i) {
			t.Fatalf("event %d carries %q: an event was lost, repeated or reordered", i, got)
		}
	}
}

func TestApplyAfterStopStartsNothing(t *testing.T) {
	g := newTickGateway("1")
	gw := testenv.StartGateway(t, g)
	sup, _ := pipeline(t, gw.Conn)
	sup.Stop()
	if started, _ := sup.Apply([]Source{{Name: "late", Data: "every: 5ms"}}); len(started) != 0 || len(sup.Statuses()) != 0 {
		t.Fatalf("started %v after Stop, statuses %+v", started, sup.Statuses())
	}
}
