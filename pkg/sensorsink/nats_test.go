package sensorsink_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	cenats "github.com/cloudevents/sdk-go/protocol/nats/v2"
	"github.com/cloudevents/sdk-go/v2/client"
	"github.com/cloudevents/sdk-go/v2/protocol"
	"github.com/nats-io/nats.go"

	"github.com/eventgate/eventgate/pkg/sensorsink"
	"github.com/eventgate/eventgate/pkg/testenv"
	"github.com/eventgate/eventgate/pkg/testenv/natsenv"
)

const subject = "sensor.events"

// natsSender is a CloudEvents NATS client as the gateway-client builds it.
func natsSender(t *testing.T, url string) client.Client {
	t.Helper()
	s, err := cenats.NewSender(url, subject, cenats.NatsOptions())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	c, err := client.New(s)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func send(t *testing.T, c client.Client, id string) {
	t.Helper()
	if res := c.Send(t.Context(), newEvent(id)); !protocol.IsACK(res) {
		t.Fatalf("send %s: %v", id, res)
	}
}

// waitFor waits until the sink holds n events, at most 10s.
func waitFor(t *testing.T, sink *testenv.Sensor, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if _, err := sink.Wait(ctx, n); err != nil {
		t.Fatal(err)
	}
}

func TestNATS(t *testing.T) {
	url := natsenv.Start(t, -1)
	ep := sensorsink.Endpoints{NATSURL: url, NATSSubject: subject}

	t.Run("records the event", func(t *testing.T) {
		sink := testenv.StartSensor(t, ep)
		send(t, natsSender(t, url), "n1")
		waitFor(t, sink, 1)
		e := sink.Received()[0]
		want := newEvent("n1")
		if e.ID() != "n1" || e.Source() != want.Source() || e.Type() != want.Type() || e.Subject() != want.Subject() ||
			!e.Time().Equal(want.Time()) || e.DataContentType() != "application/json" || string(e.Data()) != `{"n":1}` {
			t.Errorf("received %v, want %v", e, want)
		}
	})

	t.Run("mode fail drops, in order with what follows", func(t *testing.T) {
		sink := testenv.StartSensor(t, ep, sensorsink.WithMode(sensorsink.ModeFail))
		c := natsSender(t, url)
		send(t, c, "dropped")
		// The switch below is no message, so it could overtake "dropped": wait until
		// that has been refused. "kept" then comes after it on the same subscription.
		testenv.Eventually(t, 10*time.Second, 5*time.Millisecond, func() error {
			if sink.Stats().Rejected != 1 {
				return errors.New("not refused yet")
			}
			return nil
		})
		sink.SetMode(sensorsink.ModeOK)
		send(t, c, "kept")
		waitFor(t, sink, 1)
		if got := sink.Received(); len(got) != 1 || got[0].ID() != "kept" {
			t.Errorf("received %v, want only kept", got)
		}
	})

	t.Run("stall holds the message until the mode changes", func(t *testing.T) {
		sink := testenv.StartSensor(t, ep, sensorsink.WithMode(sensorsink.ModeStall))
		send(t, natsSender(t, url), "held")
		testenv.Eventually(t, 10*time.Second, 5*time.Millisecond, func() error {
			if held := sink.Stats().Held; held != 1 {
				return fmt.Errorf("%d held", held)
			}
			return nil
		})
		if got := sink.Received(); len(got) != 0 {
			t.Fatalf("received %v while stalled", got)
		}
		sink.SetMode(sensorsink.ModeOK)
		waitFor(t, sink, 1)
	})

	t.Run("a message that is not a CloudEvent is counted and skipped", func(t *testing.T) {
		sink := testenv.StartSensor(t, ep)
		nc, err := nats.Connect(url)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		if err := nc.Publish(subject, []byte("not an event")); err != nil {
			t.Fatal(err)
		}
		send(t, natsSender(t, url), "after")
		// Two connections: NATS does not order their messages against each other.
		testenv.Eventually(t, 10*time.Second, 5*time.Millisecond, func() error {
			if got := sink.Stats(); got.Malformed != 1 || got.Accepted != 1 {
				return fmt.Errorf("stats %+v, want 1 malformed, 1 accepted", got)
			}
			return nil
		})
	})
}

// Sensors and brokers start in any order: a sink started before its NATS server
// subscribes once the server is up.
func TestNATSServerStartedAfterTheSink(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := lis.Addr().(*net.TCPAddr).Port
	lis.Close()

	sink := testenv.StartSensor(t, sensorsink.Endpoints{NATSURL: fmt.Sprintf("nats://127.0.0.1:%d", port), NATSSubject: subject})
	url := natsenv.Start(t, port)
	c := natsSender(t, url)
	// Until the sink has reconnected and subscribed, core NATS drops what is published,
	// so keep publishing until one arrives.
	i := 0
	testenv.Eventually(t, 20*time.Second, 50*time.Millisecond, func() error {
		i++
		send(t, c, fmt.Sprint("try-", i))
		if len(sink.Received()) == 0 {
			return errors.New("nothing received yet")
		}
		return nil
	})
}
