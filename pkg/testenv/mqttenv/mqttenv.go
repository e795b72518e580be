// Package mqttenv runs an embedded MQTT broker (mochi-mqtt) for tests, which a test can
// stop and start again on the same port, with its sessions kept on disk if asked. It is
// apart from testenv so that only the tests that need MQTT compile the broker.
package mqttenv

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/storage"
	"github.com/mochi-mqtt/server/v2/hooks/storage/bolt"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
	"go.etcd.io/bbolt"

	"github.com/eventgate/eventgate/pkg/testenv"
)

// Broker is an MQTT broker on 127.0.0.1. Sessions, subscriptions and queued messages
// live in its memory only, and a Restart forgets them as a broker without persistence
// does, unless it was started WithStorage.
type Broker struct {
	// Addr is host:port, the same across restarts; URL is it as a tcp:// broker URL.
	Addr string
	URL  string

	t    testing.TB
	opts options
	acks *ackLog // across restarts
	mu   sync.Mutex
	srv  *mqtt.Server // nil while stopped
	// closing is srv's, set as Stop begins.
	closing *closingGuard
}

type options struct {
	users         map[string]string
	writesPending int32
	inflight      uint16
	tls           *tls.Config
	storage       string
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

// WithMaxInflight sets how many QoS 1/2 messages the broker holds unacknowledged for one
// session, queued for an absent client included, before it drops new ones (mochi's
// MaximumInflight, 8192 by default; at most 65535, the packet identifiers): fault tests
// whose sessions pile up a backlog raise it so that the broker loses nothing.
func WithMaxInflight(n uint16) Option {
	return func(o *options) { o.inflight = n }
}

// WithTLS makes the broker accept TLS connections only, with cfg; URL is then ssl://.
func WithTLS(cfg *tls.Config) Option {
	return func(o *options) { o.tls = cfg }
}

// WithStorage keeps the broker's sessions (with their subscriptions and queued QoS 1 and 2
// messages) and retained messages in a database in dir, so that they survive Stop and
// StartAgain (or Restart), as they do on a broker with persistence. Writes are not synced
// to the disk, which only a machine crash would notice.
func WithStorage(dir string) Option {
	return func(o *options) { o.storage = dir }
}

// Start runs a broker on a free loopback port until the test ends.
func Start(t testing.TB, opts ...Option) *Broker {
	t.Helper()
	b := &Broker{t: t, acks: &ackLog{}}
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
	if b.opts.inflight > 0 {
		caps.MaximumInflight = b.opts.inflight
	}
	srv := mqtt.New(&mqtt.Options{InlineClient: true, Capabilities: caps, Logger: testenv.Logger(b.t)})
	if err := srv.AddHook(&authHook{users: b.opts.users}, nil); err != nil {
		return fmt.Errorf("add auth hook: %w", err)
	}
	if err := srv.AddHook(b.acks, nil); err != nil {
		return fmt.Errorf("add acknowledgement log: %w", err)
	}
	if err := srv.AddHook(newTakeoverGuard(srv), nil); err != nil {
		return fmt.Errorf("add takeover guard: %w", err)
	}
	closing := &closingGuard{srv: srv}
	if err := srv.AddHook(closing, nil); err != nil {
		return fmt.Errorf("add closing guard: %w", err)
	}
	if b.opts.storage != "" {
		store := &storageHook{Hook: new(bolt.Hook)}
		err := srv.AddHook(store, &bolt.Options{
			Path:    filepath.Join(b.opts.storage, "mochi.db"),
			Options: &bbolt.Options{Timeout: 5 * time.Second, NoSync: true},
		})
		if err != nil {
			return fmt.Errorf("open the broker's storage in %s: %w", b.opts.storage, err)
		}
	}
	tcp := listeners.NewTCP(listeners.Config{Type: listeners.TypeTCP, ID: listenerID, Address: addr, TLSConfig: b.opts.tls})
	if err := srv.AddListener(tcp); err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	if err := srv.Serve(); err != nil {
		srv.Close()
		return fmt.Errorf("serve: %w", err)
	}
	b.mu.Lock()
	b.srv, b.closing = srv, closing
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
	srv, closing := b.srv, b.closing
	b.srv, b.closing = nil, nil
	b.mu.Unlock()
	if srv != nil {
		closing.closing.Store(true)
		// Close the listener, and disconnect its clients, as mochi's Close would, but
		// listing them with Clients.GetAll. mochi's Close lists them with GetByListener,
		// which read-locks the client map twice (it calls Len under its own read lock): a
		// client that goes away in between, its Delete waiting for the write lock, blocks
		// the second read lock, and both wait for ever (v2.7.9; a test's cleanup hung so
		// when the gateway's client disconnected as the broker stopped). The listener
		// closes its clients only once, so Close then only waits for the connections and
		// stops the hooks.
		srv.Listeners.Close(listenerID, func(id string) {
			for _, cl := range srv.Clients.GetAll() {
				if cl.Net.Listener == id && !cl.Closed() {
					_ = srv.DisconnectClient(cl, packets.ErrServerShuttingDown)
				}
			}
		})
		srv.Close()
	}
}

// Restart stops the broker and starts it again on the same port, retrying the bind for a
// few seconds in case the kernel still holds the port: empty, or with the sessions it had
// if it was started WithStorage.
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

// Inflight is how many QoS 1 and 2 messages the broker holds for the session of
// clientID, connected or not, that the client has not acknowledged (sent and waiting for
// PUBACK or PUBREC/PUBCOMP, or queued while the client is away); 0 when there is no such
// session.
func (b *Broker) Inflight(clientID string) int {
	srv := b.Server()
	if srv == nil {
		return 0
	}
	cl, ok := srv.Clients.Get(clientID)
	if !ok {
		return 0
	}
	return cl.State.Inflight.Len()
}

// Ack is an acknowledgement a client sent: a PUBACK (QoS 1) or PUBREC (QoS 2).
type Ack struct {
	PacketID uint16
	// Payload is that of the message the broker held unacknowledged under PacketID when
	// the acknowledgement came (nil for none): the message it acknowledges.
	Payload []byte
}

// Acks are the acknowledgements that clientID has sent since the broker was started,
// across restarts, in the order the broker read them.
func (b *Broker) Acks(clientID string) []Ack {
	return b.acks.of(clientID)
}

// ackLog records the acknowledgements that clients send, in order.
type ackLog struct {
	mqtt.HookBase
	mu   sync.Mutex
	acks map[string][]Ack
}

func (h *ackLog) ID() string { return "mqttenv-acks" }

func (h *ackLog) Provides(b byte) bool { return b == mqtt.OnPacketRead }

// OnPacketRead runs before the broker handles the packet, while the message it
// acknowledges is still held.
func (h *ackLog) OnPacketRead(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if t := pk.FixedHeader.Type; t == packets.Puback || t == packets.Pubrec {
		ack := Ack{PacketID: pk.PacketID}
		if m, ok := cl.State.Inflight.Get(pk.PacketID); ok {
			ack.Payload = bytes.Clone(m.Payload)
		}
		h.mu.Lock()
		if h.acks == nil {
			h.acks = map[string][]Ack{}
		}
		h.acks[cl.ID] = append(h.acks[cl.ID], ack)
		h.mu.Unlock()
	}
	return pk, nil
}

func (h *ackLog) of(clientID string) []Ack {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.acks[clientID])
}

// takeoverGuard holds publishes back while a client connects, until the broker has made
// the new connection the client's, and holds the connect until the publishes under way
// are routed. mochi (v2.7.9) first copies a kept session's queued messages to the new
// connection, then clears the old session, and only then routes the client's messages to
// the new connection: a message published meanwhile goes to the old session and is
// dropped, though its publisher got its PUBACK. A broker must not do that, and tests would
// count it as lost by the gateway.
type takeoverGuard struct {
	mqtt.HookBase
	srv *mqtt.Server

	mu   sync.Mutex
	cond *sync.Cond // signalled on every change below
	// takeovers is how many clients are connecting.
	takeovers int
	// publishing counts the publishes between OnPublish and OnPublished, per publisher: one
	// whose connection fails in between has no OnPublished, and is forgotten at its
	// OnDisconnect.
	publishing map[*mqtt.Client]int
	total      int
}

// publishesWait bounds how long a connect waits for the publishes under way: a publish
// whose PUBACK waits for a publisher that does not read.
const publishesWait = 2 * time.Second

func newTakeoverGuard(srv *mqtt.Server) *takeoverGuard {
	h := &takeoverGuard{srv: srv, publishing: map[*mqtt.Client]int{}}
	h.cond = sync.NewCond(&h.mu)
	return h
}

func (h *takeoverGuard) ID() string { return "mqttenv-takeover-guard" }

func (h *takeoverGuard) Provides(b byte) bool {
	return b == mqtt.OnSessionEstablish || b == mqtt.OnPublish || b == mqtt.OnPublished || b == mqtt.OnDisconnect
}

func (h *takeoverGuard) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for h.takeovers > 0 {
		h.cond.Wait()
	}
	h.publishing[cl]++
	h.total++
	return pk, nil
}

func (h *takeoverGuard) OnPublished(cl *mqtt.Client, _ packets.Packet) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.publishing[cl] > 0 {
		h.publishing[cl]--
		h.total--
		h.cond.Broadcast()
	}
}

func (h *takeoverGuard) OnDisconnect(cl *mqtt.Client, _ error, _ bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.total -= h.publishing[cl]
	delete(h.publishing, cl)
	h.cond.Broadcast()
}

// OnSessionEstablish runs just before the takeover. No hook runs right after it on every
// path, so a goroutine watches for its end: the new client in the broker's list, or
// closed (its connect failed), within a few seconds at most.
func (h *takeoverGuard) OnSessionEstablish(cl *mqtt.Client, _ packets.Packet) {
	h.mu.Lock()
	h.takeovers++
	waited := time.AfterFunc(publishesWait, func() {
		h.mu.Lock()
		h.cond.Broadcast()
		h.mu.Unlock()
	})
	for deadline := time.Now().Add(publishesWait); h.total > 0 && time.Now().Before(deadline); {
		h.cond.Wait()
	}
	h.mu.Unlock()
	waited.Stop()

	go func() {
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Microsecond) {
			if now, ok := h.srv.Clients.Get(cl.ID); (ok && now == cl) || cl.Closed() {
				break
			}
		}
		h.mu.Lock()
		h.takeovers--
		h.cond.Broadcast()
		h.mu.Unlock()
	}()
}

// listenerID names the broker's one listener.
const listenerID = "tcp"

// closingGuard disconnects a client whose connect ends while the broker closes. mochi's
// Close disconnects the clients it has, closes the listener, then waits for every
// connection to end; a connect under way then (one the takeover guard holds, for instance)
// joins the clients after that, is never disconnected, and Close waits for it for ever: a
// fault test's broker restart hung so. closing is set before Close begins, so a client
// that joins after Close listed them finds it set here, where mochi calls the hooks after
// adding the client and before reading from it.
type closingGuard struct {
	mqtt.HookBase
	srv     *mqtt.Server
	closing atomic.Bool
}

func (h *closingGuard) ID() string { return "mqttenv-closing-guard" }

func (h *closingGuard) Provides(b byte) bool { return b == mqtt.OnSessionEstablished }

func (h *closingGuard) OnSessionEstablished(cl *mqtt.Client, _ packets.Packet) {
	if h.closing.Load() {
		_ = h.srv.DisconnectClient(cl, packets.ErrServerShuttingDown)
	}
}

// storageHook is mochi's bolt storage with four repairs:
//   - It does not store the system statistics: the server's event loop may still write
//     those while Close closes the database, a race the sessions (written by client
//     goroutines, which Close waits for) do not have.
//   - It gives the queued messages it loads back their packet identifiers, which the bolt
//     hook does not store (mochi's other stores do) but keeps at the end of each message's
//     key: without them every message queued for a client would load as packet 0, one
//     overwriting the other.
//   - It keeps the queued messages of a session that a new connection takes over: mochi
//     clears them from the old session after copying them to the new one, which deletes
//     them from the store too (same keys) until they are sent again.
//   - It does not delete the record of a message that took the packet identifier of one
//     just acknowledged: mochi frees the identifier before it runs OnQosComplete, so a
//     message published in between is stored under the same key and then deleted with the
//     old one, and a restart loses it (its publisher had its PUBACK).
type storageHook struct {
	*bolt.Hook
	// mu orders a completion's check and delete against the stores of new messages.
	mu sync.Mutex
}

func (h *storageHook) OnQosPublish(cl *mqtt.Client, pk packets.Packet, sent int64, resends int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.Hook.OnQosPublish(cl, pk, sent, resends)
}

func (h *storageHook) OnQosComplete(cl *mqtt.Client, pk packets.Packet) {
	h.mu.Lock()
	defer h.mu.Unlock()
	// Once the client's inflight set holds the identifier again, its record is the new
	// message's: stored already, or to be stored after this (it waits on mu).
	if _, reused := cl.State.Inflight.Get(pk.PacketID); reused {
		return
	}
	h.Hook.OnQosComplete(cl, pk)
}

func (h *storageHook) OnQosDropped(cl *mqtt.Client, pk packets.Packet) {
	if cl.IsTakenOver() {
		return
	}
	h.OnQosComplete(cl, pk)
}

func (h *storageHook) Provides(b byte) bool {
	return b != mqtt.OnSysInfoTick && b != mqtt.StoredSysInfo && h.Hook.Provides(b)
}

func (h *storageHook) StoredInflightMessages() ([]storage.Message, error) {
	msgs, err := h.Hook.StoredInflightMessages()
	if err != nil {
		return nil, err
	}
	for i, m := range msgs {
		_, id, _ := strings.Cut(strings.TrimPrefix(m.ID, storage.InflightKey+"_"+m.Client), ":")
		n, err := strconv.ParseUint(id, 10, 16)
		if err != nil {
			return nil, fmt.Errorf("queued message %q: no packet identifier at the end of its key", m.ID)
		}
		msgs[i].PacketID = uint16(n)
	}
	return msgs, nil
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
