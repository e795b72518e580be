package supervisor

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/credentials/insecure"

	"github.com/eventgate/eventgate/pkg/config"
	"github.com/eventgate/eventgate/pkg/dispatch"
	"github.com/eventgate/eventgate/pkg/server"
	"github.com/eventgate/eventgate/pkg/testenv"
	"github.com/eventgate/eventgate/protos/gateways"
)

// wordGateway is a second real gateway type: a source configured as `<field>: <text>`
// emits the text every 5 ms. Its strict config refuses a tick source's fields, and a tick
// gateway refuses its field: each type accepts only its own sources.
type wordGateway struct{ typ, field string }

func (g wordGateway) Type() string { return g.typ }

func (g wordGateway) Parse(_, data string) (server.Source, error) {
	var cfg map[string]string
	if err := config.Decode(g.typ, data, &cfg); err != nil {
		return nil, err
	}
	for k := range cfg {
		if k != g.field {
			return nil, fmt.Errorf("%s.%s: unknown field", g.typ, k)
		}
	}
	if cfg[g.field] == "" {
		return nil, fmt.Errorf("%s.%s: required", g.typ, g.field)
	}
	return wordSource(cfg[g.field]), nil
}

type wordSource string

func (s wordSource) Start(ctx context.Context, emit server.Emit) error {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if err := emit(ctx, server.Event{Payload: []byte(s)}); err != nil {
			return nil
		}
	}
}

// freeAddr is a loopback address nothing listens on (until a test starts a server there).
func freeAddr(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	return addr
}

// origins records which server type each source's events came from.
type origins struct {
	mu   sync.Mutex
	seen map[string]map[string]int // source -> server type -> events
}

func (o *origins) handle(ctx context.Context, source string, _ *gateways.Event) error {
	srv, ok := ServerFrom(ctx)
	if !ok {
		return fmt.Errorf("no server in the handler's context")
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.seen[source] == nil {
		o.seen[source] = map[string]int{}
	}
	o.seen[source][srv.Type]++
	return nil
}

func (o *origins) of(source string) string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return fmt.Sprint(o.seen[source])
}

func placer(t *testing.T, servers map[string]string, order ...string) (*Supervisor, *origins) {
	t.Helper()
	var list []Server
	for _, typ := range order {
		conn, err := Dial(servers[typ], insecure.NewCredentials())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		list = append(list, Server{Name: typ + "=" + servers[typ], Type: typ, Conn: conn})
	}
	o := &origins{seen: map[string]map[string]int{}}
	sup := NewServers(list, o.handle, Options{
		Backoff: dispatch.Backoff{Initial: 10 * time.Millisecond, Max: 200 * time.Millisecond, Factor: 2},
		Log:     testenv.Logger(t),
	})
	t.Cleanup(sup.Stop)
	return sup, o
}

func statusOf(sup *Supervisor, name string) Status {
	for _, st := range sup.Statuses() {
		if st.Name == name {
			return st
		}
	}
	return Status{}
}

// Each source runs on the first server that accepts it; an unreachable server is skipped;
// a source that the reachable servers refuse waits for the unreachable one, not invalid.
func TestSourcesArePlacedOnTheServerThatAcceptsThem(t *testing.T) {
	addrs := map[string]string{
		"dead": freeAddr(t),
		"tick": testenv.StartGateway(t, newTickGateway("1")).Addr,
		"echo": testenv.StartGateway(t, wordGateway{"echo", "say"}).Addr,
	}
	sup, seen := placer(t, addrs, "dead", "tick", "echo")
	sup.Apply([]Source{{Name: "a", Data: "every: 5ms"}, {Name: "b", Data: "say: hi"}, {Name: "d", Data: "colour: blue"}})

	testenv.Eventually(t, 10*time.Second, 10*time.Millisecond, func() error {
		a, b := statusOf(sup, "a"), statusOf(sup, "b")
		if a.Phase != PhaseRunning || a.Server != "tick="+addrs["tick"] || b.Phase != PhaseRunning || b.Server != "echo="+addrs["echo"] {
			return fmt.Errorf("a: %+v, b: %+v", a, b)
		}
		if !strings.HasPrefix(seen.of("a"), "map[tick:") || !strings.HasPrefix(seen.of("b"), "map[echo:") {
			return fmt.Errorf("events of a from %s, of b from %s", seen.of("a"), seen.of("b"))
		}
		return nil
	})
	testenv.Eventually(t, 10*time.Second, 10*time.Millisecond, func() error {
		d := statusOf(sup, "d")
		for _, want := range []string{"dead=" + addrs["dead"] + ": unreachable", "tick=" + addrs["tick"] + ": tick:", "echo=" + addrs["echo"] + ": echo.colour: unknown field"} {
			if !strings.Contains(d.Message, want) {
				return fmt.Errorf("d: %+v: message lacks %q", d, want)
			}
		}
		if d.Phase != PhaseError || d.Invalid {
			return fmt.Errorf("d: %+v: want Error, retried (one server could not be asked)", d)
		}
		return nil
	})
}

// A source that every server refuses is invalid, named with every server's reason; a server
// that comes up late gets the sources only it accepts.
func TestASourceEveryServerRefusesIsInvalid(t *testing.T) {
	addrs := map[string]string{
		"tick": testenv.StartGateway(t, newTickGateway("1")).Addr,
		"echo": testenv.StartGateway(t, wordGateway{"echo", "say"}).Addr,
		"late": freeAddr(t),
	}
	sup, seen := placer(t, addrs, "tick", "echo", "late")
	sup.Apply([]Source{{Name: "c", Data: "ping: x"}, {Name: "d", Data: "colour: blue"}})
	testenv.Eventually(t, 10*time.Second, 10*time.Millisecond, func() error {
		for _, name := range []string{"c", "d"} {
			st := statusOf(sup, name)
			if st.Phase != PhaseError || st.Invalid || !strings.Contains(st.Message, "late="+addrs["late"]+": unreachable") {
				return fmt.Errorf("%s: %+v: want Error, retried, late unreachable", name, st)
			}
		}
		return nil
	})

	lis, err := net.Listen("tcp", addrs["late"])
	if err != nil {
		t.Fatalf("listen on %s: %v", addrs["late"], err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() {
		served <- server.New(wordGateway{"late", "ping"}, server.WithLogger(testenv.Logger(t))).Serve(ctx, lis)
	}()
	t.Cleanup(func() {
		sup.Stop()
		cancel()
		<-served
	})

	testenv.Eventually(t, 20*time.Second, 10*time.Millisecond, func() error {
		if c := statusOf(sup, "c"); c.Phase != PhaseRunning || c.Server != "late="+addrs["late"] || !strings.HasPrefix(seen.of("c"), "map[late:") {
			return fmt.Errorf("c: %+v, events from %s", c, seen.of("c"))
		}
		d := statusOf(sup, "d")
		want := "invalid: refused by every gateway server: tick=" + addrs["tick"] + ": tick: "
		if d.Phase != PhaseError || !d.Invalid || !strings.HasPrefix(d.Message, want) ||
			!strings.Contains(d.Message, "; echo="+addrs["echo"]+": echo.colour: unknown field; late="+addrs["late"]+": late.colour: unknown field") {
			return fmt.Errorf("d: %+v", d)
		}
		return nil
	})
}
