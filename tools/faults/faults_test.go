package faults

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eventgate/eventgate/pkg/sensorsink"
	"github.com/eventgate/eventgate/pkg/testenv"
)

// system is one gateway under fault, as its scenario sets it up.
type system struct {
	// gatewayType is the gateway's folder under services/gateways.
	gatewayType string
	// source is the event source the gateway-client runs.
	source string
	// ordered: the source keeps order within a stream, so the sensor must get each
	// stream's events in order.
	ordered bool
	// streams are the ordering keys the load takes turns on.
	streams []string
	// ready, when set, reports nil once events published now reach the gateway (an MQTT
	// subscription is in place); the load starts then.
	ready func() error
	// send publishes evs in order, records in the ledger those the upstream acknowledged,
	// and retries the others until ctx ends. An asynchronous sender (the webhook callers)
	// may return before, and waits for its calls in wait.
	send func(ctx context.Context, evs []mark)
	wait func()
	// brokerFault says how the broker is restarted, for the summary; restartBroker does it
	// (nil: there is no broker).
	brokerFault   string
	restartBroker func(t *testing.T, rng *rand.Rand)
	// drained reports nil once the upstream holds nothing unacknowledged: every event it
	// acknowledged to the load was acknowledged by the gateway (committed, acked, PUBACKed).
	drained func() error
}

const (
	// sensorDown is how long a stopped sensor stays away.
	sensorDown = 10 * time.Second
	// drainWithin bounds the wait, once the faults are over, for the upstream to be drained;
	// settleWithin then bounds the wait for the deliveries still on their way.
	drainWithin  = 60 * time.Second
	settleWithin = 15 * time.Second
)

// TestFaults runs every gateway's scenario at once, each with its own broker, gateway
// server, gateway-client and sensor. The subtests run in goroutines of their own rather
// than with t.Parallel, which -parallel (GOMAXPROCS, 2 here) would hold to two at a time:
// the scenarios wait far more than they compute.
func TestFaults(t *testing.T) {
	cfg := loadSettings(t)
	var scenarios sync.WaitGroup
	t.Logf("fault suite seed %d (replay: %s=%d), %d rounds, %d events/s per gateway", cfg.seed, envSeed, cfg.seed, cfg.rounds, cfg.rate)
	for _, sc := range []struct {
		name  string
		setup func(t *testing.T, l *ledger) *system
	}{
		{"webhook", webhookSystem},
		{"kafka", kafkaSystem},
		{"amqp", amqpSystem},
		{"mqtt", mqttSystem},
	} {
		scenarios.Add(1)
		go func() {
			defer scenarios.Done()
			t.Run(sc.name, func(t *testing.T) {
				if cfg.gateways != nil && !cfg.gateways[sc.name] {
					t.Skipf("not in %s", envGateways)
				}
				run(t, cfg, sc.name, sc.setup)
			})
		}()
	}
	scenarios.Wait()
}

// faultKinds are what happens to a running path, each cfg.rounds times per gateway, in an
// order and with gaps drawn from the seed.
var faultKinds = []string{"client-kill", "server-kill", "sensor-down", "broker-restart"}

func run(t *testing.T, cfg settings, name string, setup func(t *testing.T, l *ledger) *system) {
	began := time.Now()
	rng := cfg.rng(name)
	l := newLedger()
	sys := setup(t, l)
	p := startPath(t, sys)
	if sys.ready != nil {
		testenv.Eventually(t, 60*time.Second, 50*time.Millisecond, sys.ready)
	}

	// The load runs until the faults are over; sends still retrying then may go on until
	// the drain deadline.
	sendCtx, stopSending := context.WithCancel(context.Background())
	defer stopSending()
	loadCtx, stopLoad := context.WithCancel(context.Background())
	loaded := make(chan struct{})
	go func() {
		defer close(loaded)
		load(loadCtx, sendCtx, cfg.rate, l, sys)
	}()
	// A test that stops early (a fault that could not be undone) stops the load before the
	// system's cleanups close what it sends through: a send on a closed producer panics,
	// which would end the whole run without the test's own message.
	t.Cleanup(func() {
		stopLoad()
		stopSending()
		select {
		case <-loaded:
		case <-time.After(drainWithin):
		}
	})

	schedule := make([]string, 0, cfg.rounds*len(faultKinds))
	for range cfg.rounds {
		for _, kind := range faultKinds {
			if kind != "broker-restart" || sys.restartBroker != nil {
				schedule = append(schedule, kind)
			}
		}
	}
	rng.Shuffle(len(schedule), func(i, j int) { schedule[i], schedule[j] = schedule[j], schedule[i] })
	var done []string
	for _, kind := range schedule {
		gap := between(rng, 500*time.Millisecond, 3*time.Second)
		time.Sleep(gap) // a fault's random point in the load, not a wait for anything
		at := time.Since(began).Round(100 * time.Millisecond)
		p.inject(kind, rng)
		done = append(done, fmt.Sprintf("%s@%s", kind, at))
		t.Logf("%s: %s at %s (after a %s gap), back at %s", name, kind, at, gap.Round(10*time.Millisecond), time.Since(began).Round(100*time.Millisecond))
	}

	stopLoad()
	time.AfterFunc(drainWithin, stopSending)
	<-loaded
	if sys.wait != nil {
		sys.wait()
	}
	drainErr := waitFor(drainWithin, sys.drained)
	acked := l.ackedMarks()
	// What the upstream no longer holds is delivered by now or never: the deliveries still
	// on their way get a moment.
	waitFor(settleWithin, func() error {
		got, _ := deliveries(p.sensor.Received())
		if n := len(count(got, acked, false).lost); n > 0 {
			return fmt.Errorf("%d acknowledged events not delivered yet", n)
		}
		return nil
	})
	got, unreadable := deliveries(p.sensor.Received())
	res := count(got, acked, sys.ordered)
	sent, _ := l.counts()
	cfg.summarize(t, fmt.Sprintf("SUMMARY %s: seed %d, %d faults [%s] (broker restart: %s), sent %d, acked %d, delivered %d, lost %s, duplicates %d, order violations %s, %s",
		name, cfg.seed, len(done), strings.Join(done, " "), sys.brokerFault, sent, len(acked), res.delivered,
		lostField(res, drainErr), res.duplicates, violationsField(res, sys.ordered), time.Since(began).Round(time.Second)))

	if drainErr != nil {
		t.Errorf("%s: upstream not drained within %s of the last fault: %v", name, drainWithin, drainErr)
	}
	if len(acked) == 0 {
		t.Errorf("%s: the upstream acknowledged no event: the load never got through", name)
	}
	if len(res.lost) > 0 {
		what := "acknowledged upstream but never delivered to the sensor"
		if drainErr != nil {
			what = "acknowledged by the broker and not delivered to the sensor " + drainWithin.String() + " after the last fault"
		}
		t.Errorf("%s (seed %d): %d events %s: %s", name, cfg.seed, len(res.lost), what, sample(spans(res.lost), 30))
	}
	if sys.ordered && len(res.violations) > 0 {
		t.Errorf("%s (seed %d): %d events out of order: %s", name, cfg.seed, len(res.violations), sample(res.violations, 30))
	}
	if len(res.resentOutOfOrder) > 0 {
		t.Logf("%s: %d events the broker resent out of order (not the gateway's doing, see count): %s", name, len(res.resentOutOfOrder), sample(res.resentOutOfOrder, 10))
	}
	if len(unreadable) > 0 {
		t.Errorf("%s: %d events at the sensor carry no mark of the load: %s", name, len(unreadable), sample(unreadable, 10))
	}
}

// lostField is the summary's count of lost events. Undelivered events are lost once the
// upstream holds nothing more; until then some may still be held by a stuck gateway.
func lostField(res tally, drainErr error) string {
	if drainErr != nil {
		return fmt.Sprintf("%d undelivered (not drained: %v)", len(res.lost), drainErr)
	}
	return fmt.Sprint(len(res.lost))
}

func violationsField(res tally, ordered bool) string {
	if !ordered {
		return "n/a (unordered source)"
	}
	s := fmt.Sprint(len(res.violations))
	if n := len(res.resentOutOfOrder); n > 0 {
		s += fmt.Sprintf(" (and %d among messages the broker resent out of order)", n)
	}
	return s
}

// path is what carries a gateway's events from its upstream to the sensor, the faults'
// target. Every fault leaves the component it hits where it was: the same sensor URL,
// gateway address and event source.
type path struct {
	t         *testing.T
	sys       *system
	sensor    *testenv.RestartableSensor
	bin, addr string
	server    *testenv.Process
	clientCfg testenv.ClientConfig
	client    *testenv.Client
}

func startPath(t *testing.T, sys *system) *path {
	// The sensor's log, one line per event, would bury the suite's own in -v output.
	sensor := testenv.StartRestartableSensor(t, sensorsink.WithKeep(1<<24), sensorsink.WithLogger(slog.New(slog.DiscardHandler)))
	p := &path{t: t, sys: sys, sensor: sensor, bin: testenv.Binary(t, "services/gateways/"+sys.gatewayType), addr: testenv.FreePort(t)}
	p.server = testenv.StartGatewayOnPort(t, p.bin, p.addr)
	p.clientCfg = testenv.ClientConfig{
		GatewayType: sys.gatewayType,
		Servers:     []string{p.addr},
		Sensors:     []string{sensor.URL},
		Sources:     map[string]string{"faults": sys.source},
	}
	p.client = testenv.StartClient(t, p.clientCfg)
	return p
}

// inject does a fault of kind and returns once the component is back.
func (p *path) inject(kind string, rng *rand.Rand) {
	switch kind {
	case "client-kill":
		p.client.Kill()
		p.client = testenv.StartClient(p.t, p.clientCfg)
	case "server-kill":
		p.server.Kill()
		p.server = testenv.StartGatewayOnPort(p.t, p.bin, p.addr)
	case "sensor-down":
		p.sensor.Down()
		time.Sleep(sensorDown) // the length of the outage
		p.sensor.Up()
	case "broker-restart":
		p.sys.restartBroker(p.t, rng)
	default:
		p.t.Fatalf("unknown fault %q", kind)
	}
}

// load hands out rate events a second, in batches every 20 ms, each batch to the next
// stream in turn, until ctx ends. A send that blocks (a broker away) piles up what is due;
// it goes out afterwards, as a producer's buffer would, at most 100 at a time.
func load(ctx, sendCtx context.Context, rate int, l *ledger, sys *system) {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	began, issued := time.Now(), 0
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		n := min(int(time.Since(began).Seconds()*float64(rate))-issued, 100)
		if n <= 0 {
			continue
		}
		issued += n
		sys.send(sendCtx, l.newEvents(sys.streams[i%len(sys.streams)], n))
	}
}

// waitFor polls cond until it returns nil or within has passed, and returns its last error.
func waitFor(within time.Duration, cond func() error) error {
	deadline := time.Now().Add(within)
	for {
		err := cond()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// retry calls publish until it succeeds or ctx ends, with a short pause between attempts
// (or the one the error asks for), as a producer that keeps its events would.
func retry(ctx context.Context, publish func() error) error {
	for {
		err := publish()
		if err == nil {
			return nil
		}
		pause := 100 * time.Millisecond
		var asked interface{ retryAfter() time.Duration }
		if errors.As(err, &asked) && asked.retryAfter() > 0 {
			pause = asked.retryAfter()
		}
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-time.After(pause):
		}
	}
}
