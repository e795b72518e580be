// Package mqttenv runs an embedded MQTT broker (mochi-mqtt) for tests, which a test can
// stop and start again on the same port. It is apart from testenv so that only the tests
// that need MQTT compile the broker.
package mqttenv

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/eventgate/eventgate/pkg/testenv"
)

// Broker is an in-memory MQTT broker on 127.0.0.1. Sessions, subscriptions and queued
// messages live in its memory only: a Restart forgets them, as a broker without
// persistence does.
type Broker struct {
	// Addr is host:port, the same across restarts; URL is it as a tcp:// broker URL.
	Addr string
	URL  string

	t    testing.TB
	opts options
	mu   sync.Mutex
	srv  *mqtt.Server // nil while stopped
}

type options struct {
	users         map[string]string
	writesPending int32
	tls           *tls.Config
}

// Option changes how the broker runs.
type Option func(*options)

// WithUser makes the broker require a username and password, and accept this pair.
func WithUser(username, password string) Option {
	return func(o *options) {
		if o.users == nil {
			o.users = map[string]string{}
		}
		o.users[username] = password
	}
}

// WithMaxWritesPending sets how many messages the broker queues for one client before it
// drops them (mochi's MaximumClientWritesPending, 8192 by default): benchmarks that publish
// faster than a consumer reads raise it so that nothing is dropped.
func WithMaxWritesPending(n int32) Option {
	return func(o *options) { o.writesPending = n }
}

// WithTLS makes the broker accept TLS connections only, with cfg; URL is then ssl://.
func WithTLS(cfg *tls.Config) Option {
	return func(o *options) { o.tls = cfg }
}

// Start runs a broker on a free loopback port until the test ends.
func Start(t testing.TB, opts ...Option) *Broker {
	t.Helper()
	b := &Broker{t: t}
	for _, o := range opts {
		o(&b.opts)
	}
	if err := b.start("127.0.0.1:0"); err != nil {
		t.Fatalf("start MQTT broker: %v", err)
	}
	t.Cleanup(b.Stop)
	return b
}

func (b *Broker) start(addr string) error {
	caps := mqtt.NewDefaultServerCapabilities()
	if b.opts.writesPending > 0 {
		caps.MaximumClientWritesPending = b.opts.writesPending
	}
	srv := mqtt.New(&mqtt.Options{InlineClient: true, Capabilities: caps, Logger: testenv.Logger(b.t)})
	if err := srv.AddHook(&authHook{users: b.opts.users}, nil); err != nil {
		return fmt.Errorf("add auth hook: %w", err)
	}
	tcp := listeners.NewTCP(listeners.Config{Type: listeners.TypeTCP, ID: "tcp", Address: addr, TLSConfig: b.opts.tls})
	if err := srv.AddListener(tcp); err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	if err := srv.Serve(); err != nil {
		srv.Close()
		return fmt.Errorf("serve: %w", err)
	}
	b.mu.Lock()
	b.srv = srv
	b.Addr = tcp.Address()
	b.URL = "tcp://" + b.Addr
	if b.opts.tls != nil {
		b.URL = "ssl://" + b.Addr
	}
	b.mu.Unlock()
	return nil
}

// Stop closes the broker and every client connection; it is idempotent.
func (b *Broker) Stop() {
	b.mu.Lock()
	srv := b.srv
	b.srv = nil
	b.mu.Unlock()
	if srv != nil {
		srv.Close()
	}
}

// Restart stops the broker and starts an empty one on the same port, retrying the bind
// for a few seconds in case the kernel still holds the port.
func (b *Broker) Restart() {
	b.t.Helper()
	b.Stop()
	b.StartAgain()
}

// StartAgain starts a stopped broker on its old port.
func (b *Broker) StartAgain() {
	b.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := b.start(b.Addr)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("restart MQTT broker on %s: %v", b.Addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Server is the running mochi server (nil while stopped), for tests that read its state.
func (b *Broker) Server() *mqtt.Server {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.srv
}

// Publish publishes through the broker's inline client, as a remote publisher would.
func (b *Broker) Publish(topic string, payload []byte, qos byte) error {
	srv := b.Server()
	if srv == nil {
		return fmt.Errorf("MQTT broker on %s is stopped", b.Addr)
	}
	return srv.Publish(topic, bytes.Clone(payload), false, qos)
}

// Subscribed reports whether a connected client is subscribed to exactly filter.
func (b *Broker) Subscribed(filter string) bool {
	srv := b.Server()
	if srv == nil {
		return false
	}
	for _, cl := range srv.Clients.GetAll() {
		if _, ok := cl.State.Subscriptions.Get(filter); ok && !cl.Closed() && !cl.Net.Inline {
			return true
		}
	}
	return false
}

// Connected reports whether the client with this ID is connected.
func (b *Broker) Connected(clientID string) bool {
	srv := b.Server()
	if srv == nil {
		return false
	}
	cl, ok := srv.Clients.Get(clientID)
	return ok && !cl.Closed()
}

// Disconnect closes the network connection of a client, as a network failure would; the
// broker keeps the client's session if it asked for a persistent one.
func (b *Broker) Disconnect(clientID string) error {
	srv := b.Server()
	if srv == nil {
		return fmt.Errorf("MQTT broker on %s is stopped", b.Addr)
	}
	cl, ok := srv.Clients.Get(clientID)
	if !ok {
		return fmt.Errorf("no client %q", clientID)
	}
	cl.Stop(net.ErrClosed)
	return nil
}

// authHook lets in everyone when users is nil, else only the listed username/password
// pairs. It stands in for mochi's hooks/auth, which would pull a YAML library into go.mod
// for a ledger these tests do not need.
type authHook struct {
	mqtt.HookBase
	users map[string]string
}

func (h *authHook) ID() string { return "mqttenv-auth" }

func (h *authHook) Provides(b byte) bool {
	return b == mqtt.OnConnectAuthenticate || b == mqtt.OnACLCheck
}

func (h *authHook) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool {
	if h.users == nil {
		return true
	}
	want, ok := h.users[string(cl.Properties.Username)]
	return ok && want == string(pk.Connect.Password)
}

func (h *authHook) OnACLCheck(*mqtt.Client, string, bool) bool { return true }
