package mqttenv_test

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/eventgate/eventgate/pkg/testenv"
	"github.com/eventgate/eventgate/pkg/testenv/mqttenv"
)

// connect connects clientID with a persistent session; what it receives (and acknowledges)
// goes to got.
func connect(t *testing.T, b *mqttenv.Broker, clientID string, got chan<- string) paho.Client {
	t.Helper()
	opts := paho.NewClientOptions().AddBroker(b.URL).SetClientID(clientID).SetCleanSession(false).
		SetAutoReconnect(false).SetOrderMatters(true)
	opts.SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) { got <- string(m.Payload()) })
	c := paho.NewClient(opts)
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect %s: %v", clientID, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(0) })
	return c
}

func disconnect(t *testing.T, b *mqttenv.Broker, c paho.Client, clientID string) {
	t.Helper()
	c.Disconnect(100)
	testenv.Eventually(t, 10*time.Second, 2*time.Millisecond, func() error {
		if b.Connected(clientID) {
			return fmt.Errorf("%s still connected", clientID)
		}
		return nil
	})
}

func receive(t *testing.T, got <-chan string, n int) []string {
	t.Helper()
	var out []string
	for range n {
		select {
		case m := <-got:
			out = append(out, m)
		case <-time.After(10 * time.Second):
			t.Fatalf("received %q, then nothing within 10s; want %d messages", out, n)
		}
	}
	slices.Sort(out)
	return out
}

func publish(t *testing.T, b *mqttenv.Broker, bodies ...string) {
	t.Helper()
	for _, body := range bodies {
		if err := b.Publish("kept", []byte(body), 1); err != nil {
			t.Fatal(err)
		}
	}
}

// A broker WithStorage keeps, across a restart on the same port, a session with its
// subscription and the QoS 1 messages queued for it while its client was away; and what
// the client acknowledged stays acknowledged.
func TestStorageKeepsSessionsAcrossRestarts(t *testing.T) {
	b := mqttenv.Start(t, mqttenv.WithStorage(t.TempDir()))
	got := make(chan string, 100)
	c := connect(t, b, "keeper", got)
	if tok := c.Subscribe("kept", 1, nil); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	disconnect(t, b, c, "keeper")
	publish(t, b, "m0", "m1", "m2")
	if n := b.Inflight("keeper"); n != 3 {
		t.Fatalf("%d messages queued for the session, want 3", n)
	}
	addr := b.Addr
	b.Restart()
	if b.Addr != addr {
		t.Fatalf("restarted on %s, want %s", b.Addr, addr)
	}
	if n := b.Inflight("keeper"); n != 3 {
		t.Fatalf("%d messages queued for the session after the restart, want the 3 queued before", n)
	}

	c = connect(t, b, "keeper", got)
	if m := receive(t, got, 3); !slices.Equal(m, []string{"m0", "m1", "m2"}) {
		t.Fatalf("received %q after the restart, want m0, m1, m2", m)
	}
	publish(t, b, "after")
	if m := receive(t, got, 1); m[0] != "after" {
		t.Fatalf("received %q, want the message published after the restart (the subscription was kept)", m)
	}
	testenv.Eventually(t, 10*time.Second, 2*time.Millisecond, func() error {
		if n := b.Inflight("keeper"); n != 0 {
			return fmt.Errorf("%d messages unacknowledged", n)
		}
		return nil
	})
	disconnect(t, b, c, "keeper")

	b.Stop()
	b.StartAgain()
	if n := b.Inflight("keeper"); n != 0 {
		t.Fatalf("%d messages queued after a second restart, want none: all were acknowledged", n)
	}
	connect(t, b, "keeper", got)
	publish(t, b, "marker")
	if m := receive(t, got, 1); m[0] != "marker" {
		t.Fatalf("received %q, want only the marker", m)
	}
}

// Without storage a restart forgets the session and what was queued for it.
func TestRestartWithoutStorageForgets(t *testing.T) {
	b := mqttenv.Start(t)
	c := connect(t, b, "forgotten", make(chan string, 100))
	if tok := c.Subscribe("kept", 1, nil); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	disconnect(t, b, c, "forgotten")
	publish(t, b, "m0")
	if n := b.Inflight("forgotten"); n != 1 {
		t.Fatalf("%d messages queued for the session, want 1", n)
	}
	b.Restart()
	if n := b.Inflight("forgotten"); n != 0 {
		t.Fatalf("%d messages queued after the restart, want none", n)
	}
}

// Messages published while a client resumes its kept session, again and again, all reach
// it: none goes to the old session as the new connection takes it over. Published by the
// broker's inline client (Publish) and by a client over the network.
func TestPublishDuringTakeoverLosesNothing(t *testing.T) {
	for _, store := range []bool{false, true} {
		for _, network := range []bool{false, true} {
			t.Run(fmt.Sprintf("storage %t, network publisher %t", store, network), func(t *testing.T) {
				var opts []mqttenv.Option
				if store {
					opts = append(opts, mqttenv.WithStorage(t.TempDir()))
				}
				b := mqttenv.Start(t, opts...)
				publish := func(body string) error { return b.Publish("kept", []byte(body), 1) }
				if network {
					p := paho.NewClient(paho.NewClientOptions().AddBroker(b.URL).SetClientID("publisher").SetAutoReconnect(false))
					if tok := p.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
						t.Fatalf("connect the publisher: %v", tok.Error())
					}
					t.Cleanup(func() { p.Disconnect(0) })
					publish = func(body string) error {
						if tok := p.Publish("kept", 1, false, body); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
							return fmt.Errorf("publish %s: no PUBACK: %v", body, tok.Error())
						}
						return nil
					}
				}
				const n = 2000
				got := make(chan string, n)
				c := connect(t, b, "resumer", got)
				if tok := c.Subscribe("kept", 1, nil); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
					t.Fatalf("subscribe: %v", tok.Error())
				}
				published := make(chan error, 1)
				go func() {
					for i := range n {
						if err := publish(fmt.Sprint(i)); err != nil {
							published <- err
							return
						}
					}
					published <- nil
				}()
				seen := map[string]bool{}
				for range 5 {
					disconnect(t, b, c, "resumer")
					c = connect(t, b, "resumer", got)
					seen[<-got] = true // a message came through the new connection
				}
				if err := <-published; err != nil {
					t.Fatal(err)
				}
				deadline := time.After(10 * time.Second)
				for len(seen) < n {
					select {
					case m := <-got:
						seen[m] = true
					case <-deadline:
						t.Fatalf("%d of %d messages arrived; the broker holds %d unacknowledged", len(seen), n, b.Inflight("resumer"))
					}
				}
			})
		}
	}
}

// holdEstablish holds every connect in OnSessionEstablish (just before the broker adds the
// client) until release is closed; entered gets a value as each connect arrives there.
type holdEstablish struct {
	mqtt.HookBase
	entered chan struct{}
	release chan struct{}
}

func (h *holdEstablish) ID() string { return "test-hold-establish" }

func (h *holdEstablish) Provides(b byte) bool { return b == mqtt.OnSessionEstablish }

func (h *holdEstablish) OnSessionEstablish(*mqtt.Client, packets.Packet) {
	h.entered <- struct{}{}
	<-h.release
}

// Stop returns although a connect was under way when it began: the client joins after
// mochi's Close listed the clients to disconnect (the fault suite's broker restart met a
// connect held so by the takeover guard, and Close waited for it for ever).
func TestStopEndsAConnectUnderWay(t *testing.T) {
	b := mqttenv.Start(t)
	hold := &holdEstablish{entered: make(chan struct{}, 1), release: make(chan struct{})}
	if err := b.Server().AddHook(hold, nil); err != nil {
		t.Fatal(err)
	}
	c := paho.NewClient(paho.NewClientOptions().AddBroker(b.URL).SetClientID("late").SetCleanSession(false).
		SetAutoReconnect(false).SetConnectTimeout(30 * time.Second))
	c.Connect()
	t.Cleanup(func() { c.Disconnect(0) })
	select {
	case <-hold.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the connect did not reach the broker within 10s")
	}

	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		b.Stop()
	}()
	// Close lists the clients to disconnect, then closes the listener: once a dial is
	// refused, the list was made without the held client.
	testenv.Eventually(t, 10*time.Second, 5*time.Millisecond, func() error {
		conn, err := net.Dial("tcp", b.Addr)
		if err != nil {
			return nil
		}
		conn.Close()
		return errors.New("the listener still accepts")
	})
	close(hold.release)
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("Stop did not return within 10s of the held connect going on: the late client was never disconnected")
	}
}
