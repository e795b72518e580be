package faults

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/eventgate/eventgate/pkg/testenv/amqpenv"
)

const amqpQueue = "faults"

// rabbitNode is a RabbitMQ node of this test's own, started with
// tools/testservers/rabbitmq.sh: its restarts would break the other packages' tests on the
// shared node (EVENTGATE_AMQP_URL) that go test runs at the same time.
type rabbitNode struct {
	url, ctl, script string
}

func startRabbit(t *testing.T) *rabbitNode {
	t.Helper()
	script, err := rabbitScript()
	if err == nil {
		if _, err = os.Stat("/usr/lib/rabbitmq/bin/rabbitmq-server"); err != nil && os.Getenv(amqpenv.EnvRequire) != "1" {
			err = fmt.Errorf("rabbitmq-server is not installed: %w", err)
		}
	}
	if err != nil {
		if os.Getenv(amqpenv.EnvRequire) == "1" {
			t.Fatalf("RabbitMQ is required (%s=1): %v", amqpenv.EnvRequire, err)
		}
		t.Skipf("SKIPPED: no RabbitMQ: %v (set %s=1 to fail instead)", err, amqpenv.EnvRequire)
	}
	// A node started beside the run's shared one now and then fails to set up Erlang
	// distribution ("nodistribution") while the other boots; a new attempt, with new
	// names and ports from the script, starts.
	var out []byte
	for attempt := 1; ; attempt++ {
		out, err = exec.Command(script, "start", "--watch-pid", fmt.Sprint(os.Getpid())).Output()
		if err == nil {
			break
		}
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			err = fmt.Errorf("%w\n%s", err, exit.Stderr)
		}
		if attempt == 3 {
			t.Fatalf("%s start, %d attempts: %v", script, attempt, err)
		}
		t.Logf("%s start, attempt %d: %v", script, attempt, err)
	}
	n := &rabbitNode{script: script}
	for _, line := range strings.Split(string(out), "\n") {
		name, value, _ := strings.Cut(strings.TrimPrefix(line, "export "), "=")
		switch name {
		case amqpenv.EnvURL:
			n.url = value
		case amqpenv.EnvCtl:
			n.ctl = value
		}
	}
	if n.url == "" || n.ctl == "" {
		t.Fatalf("%s start printed no %s and %s:\n%s", script, amqpenv.EnvURL, amqpenv.EnvCtl, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command(script, "stop", n.ctl).CombinedOutput(); err != nil {
			t.Logf("stop RabbitMQ: %v\n%s", err, out)
		}
	})
	return n
}

// rabbitScript is $EVENTGATE_RABBITMQ_SCRIPT, or the script in this checkout.
func rabbitScript() (string, error) {
	if s := os.Getenv(amqpenv.EnvScript); s != "" {
		return s, nil
	}
	s, err := filepath.Abs("../testservers/rabbitmq.sh")
	if err == nil {
		_, err = os.Stat(s)
	}
	return s, err
}

func (n *rabbitNode) restart(t *testing.T) {
	t.Helper()
	if out, err := exec.Command(n.script, "restart", n.ctl).CombinedOutput(); err != nil {
		t.Fatalf("restart RabbitMQ: %v\n%s", err, out)
	}
}

// queueCounts asks the node for the queue's ready and unacknowledged messages: the AMQP
// protocol tells the ready ones only.
func (n *rabbitNode) queueCounts() (ready, unacked string, err error) {
	cmd := exec.Command("bash", "-c", `source "$1" && /usr/lib/rabbitmq/bin/rabbitmqctl -q list_queues --no-table-headers name messages_ready messages_unacknowledged`, "bash", n.ctl)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", "", fmt.Errorf("rabbitmqctl list_queues: %w\n%s", err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == amqpQueue {
			return f[1], f[2], nil
		}
	}
	return "", "", fmt.Errorf("queue %q not listed:\n%s", amqpQueue, out)
}

// amqpPublisher publishes persistent messages with publisher confirms: a confirm is the
// broker's acknowledgement.
type amqpPublisher struct {
	url  string
	conn *amqp.Connection
	ch   *amqp.Channel
}

// declare makes the exchange, the durable queue and their binding as the source declares
// them, so that nothing published before the gateway first connects is dropped.
func declare(ch *amqp.Channel) error {
	if err := ch.ExchangeDeclare(amqpQueue, amqp.ExchangeDirect, true, false, false, false, nil); err != nil {
		return err
	}
	if _, err := ch.QueueDeclare(amqpQueue, true, false, false, false, nil); err != nil {
		return err
	}
	return ch.QueueBind(amqpQueue, amqpQueue, amqpQueue, false, nil)
}

func (p *amqpPublisher) connect() error {
	conn, err := amqp.DialConfig(p.url, amqp.Config{Dial: amqp.DefaultDial(2 * time.Second)})
	if err != nil {
		return err
	}
	ch, err := conn.Channel()
	if err == nil {
		err = ch.Confirm(false)
	}
	if err == nil {
		err = declare(ch)
	}
	if err != nil {
		conn.Close()
		return err
	}
	p.conn, p.ch = conn, ch
	return nil
}

func (p *amqpPublisher) close() {
	if p.conn != nil {
		p.conn.Close()
		p.conn, p.ch = nil, nil
	}
}

// publish sends evs and returns how many of them, from the first, the broker confirmed.
func (p *amqpPublisher) publish(ctx context.Context, evs []mark) (int, error) {
	if p.conn == nil || p.conn.IsClosed() {
		p.close()
		if err := p.connect(); err != nil {
			return 0, err
		}
	}
	confirms := make([]*amqp.DeferredConfirmation, 0, len(evs))
	fail := func(err error) (int, error) {
		p.close()
		return 0, err
	}
	for _, m := range evs {
		dc, err := p.ch.PublishWithDeferredConfirmWithContext(ctx, amqpQueue, amqpQueue, true, false, amqp.Publishing{
			ContentType: "application/json", DeliveryMode: amqp.Persistent, Body: m.body(),
		})
		if err != nil {
			return fail(err)
		}
		confirms = append(confirms, dc)
	}
	wait, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for i, dc := range confirms {
		ok, err := dc.WaitContext(wait)
		if err != nil || !ok {
			p.close()
			return i, fmt.Errorf("message %s not confirmed: %v", evs[i], err)
		}
	}
	return len(evs), nil
}

// amqpSystem: one durable queue, an ordered stream. A message is acknowledged upstream once
// the broker confirmed it; the drain waits for the queue to hold nothing, ready or
// unacknowledged.
func amqpSystem(t *testing.T, l *ledger) *system {
	node := startRabbit(t)
	pub := &amqpPublisher{url: node.url}
	t.Cleanup(pub.close)
	var mu sync.Mutex
	lastAsked := time.Time{}
	return &system{
		gatewayType: "amqp",
		source: fmt.Sprintf("url: %s\nexchangeName: %s\nexchangeType: direct\nroutingKey: %s\njsonBody: true\nbackoff: {duration: 100ms, factor: 1}\nqueueDeclare: {name: %s, durable: true, exclusive: false}",
			node.url, amqpQueue, amqpQueue, amqpQueue),
		ordered: true,
		streams: []string{"queue"},
		send: func(ctx context.Context, evs []mark) {
			retry(ctx, func() error {
				n, err := pub.publish(ctx, evs)
				l.ack(evs[:n]...)
				evs = evs[n:]
				return err
			})
		},
		brokerFault:   "rabbitmq.sh restart (stop_app, start_app) of a node of its own",
		restartBroker: func(t *testing.T, _ *rand.Rand) { node.restart(t) },
		drained: func() error {
			// rabbitmqctl costs a second of CPU: ask it only once the queue has nothing
			// ready, and at most every 2 s.
			ready, err := readyMessages(node.url)
			if err != nil {
				return err
			}
			if ready > 0 {
				return fmt.Errorf("%d messages ready", ready)
			}
			mu.Lock()
			defer mu.Unlock()
			if time.Since(lastAsked) < 2*time.Second {
				return errors.New("waiting to ask rabbitmqctl again")
			}
			lastAsked = time.Now()
			r, u, err := node.queueCounts()
			if err != nil {
				return err
			}
			if r != "0" || u != "0" {
				return fmt.Errorf("queue %s: %s ready, %s unacknowledged", amqpQueue, r, u)
			}
			return nil
		},
	}
}

// readyMessages is the queue's count of messages ready for delivery.
func readyMessages(url string) (int, error) {
	conn, err := amqp.DialConfig(url, amqp.Config{Dial: amqp.DefaultDial(2 * time.Second)})
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return 0, err
	}
	q, err := ch.QueueDeclarePassive(amqpQueue, true, false, false, false, nil)
	if err != nil {
		return 0, err
	}
	return q.Messages, nil
}
