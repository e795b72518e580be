package supervisor

import (
	"context"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/eventgate/eventgate/pkg/server"
	"github.com/eventgate/eventgate/pkg/testenv"
	"github.com/eventgate/eventgate/protos/gateways"
)

// stepGateway's sources emit events one at a time, each only once the one before it has
// its fate: the trickle of a quiet source, where every frame travels alone.
type stepGateway struct{ events int }

func (stepGateway) Type() string { return "step" }

func (g stepGateway) Parse(string, string) (server.Source, error) { return stepSource(g), nil }

type stepSource stepGateway

func (s stepSource) Start(ctx context.Context, emit server.Emit) error {
	fate := make(chan server.Fate, 1)
	for i := 0; i < s.events; i++ {
		if err := emit(ctx, server.Event{Payload: []byte(`{}`), OnFate: func(f server.Fate) { fate <- f }}); err != nil {
			return nil
		}
		select {
		case <-fate:
		case <-ctx.Done():
			return nil
		}
	}
	<-ctx.Done()
	return nil
}

// pingCounter counts the HTTP/2 PING frames (answers left out) each side of the
// connections a listener accepts sends, by parsing a copy of their bytes.
type pingCounter struct {
	fromClient, fromServer atomic.Int64
	parsers                sync.WaitGroup
}

type countingListener struct {
	net.Listener
	pings *pingCounter
}

func (l countingListener) Accept() (net.Conn, error) {
	conn, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &tappedConn{Conn: conn, in: l.pings.parse(&l.pings.fromClient, true), out: l.pings.parse(&l.pings.fromServer, false)}, nil
}

// parse counts the pings in what is written to the pipe it returns; a client's bytes
// start with the connection preface, which is not a frame.
func (c *pingCounter) parse(pings *atomic.Int64, preface bool) *io.PipeWriter {
	r, w := io.Pipe()
	c.parsers.Add(1)
	go func() {
		defer c.parsers.Done()
		// Closing the reader makes the connection's later copies fail at once rather
		// than block, should the parser stop early.
		defer r.Close()
		if preface {
			if _, err := io.CopyN(io.Discard, r, int64(len(http2.ClientPreface))); err != nil {
				return
			}
		}
		fr := http2.NewFramer(nil, r)
		fr.SetMaxReadFrameSize(1 << 24)
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				return
			}
			if p, ok := f.(*http2.PingFrame); ok && !p.IsAck() {
				pings.Add(1)
			}
		}
	}()
	return w
}

// tappedConn copies what the server reads to in and what it writes to out.
type tappedConn struct {
	net.Conn
	in, out *io.PipeWriter
}

func (c *tappedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.in.Write(p[:n])
	}
	return n, err
}

func (c *tappedConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if n > 0 {
		c.out.Write(p[:n])
	}
	return n, err
}

func (c *tappedConn) Close() error {
	c.in.Close()
	c.out.Close()
	return c.Conn.Close()
}

// With gRPC's dynamic flow-control windows, the receiver of a data frame sends a BDP ping
// whenever none is out: an acknowledged event that travels alone costs a ping from the
// client (for the event) and one from the server (for its ack), each answered, four
// system calls in all. The client's and the server's fixed windows leave the stream
// without a single ping.
func TestAQuietAcknowledgedStreamSendsNoPings(t *testing.T) {
	const events = 20
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pings := &pingCounter{}
	gw := testenv.StartGatewayOn(t, countingListener{Listener: lis, pings: pings}, stepGateway{events: events})

	conn, err := Dial(gw.Addr, insecure.NewCredentials())
	if err != nil {
		t.Fatal(err)
	}
	callCtx, endCall := context.WithTimeout(context.Background(), 20*time.Second)
	defer endCall()
	stream, err := gateways.NewEventingClient(conn).StreamEventSource(callCtx)
	if err != nil {
		t.Fatal(err)
	}
	start := &gateways.SourceControl{Control: &gateways.SourceControl_Start{Start: &gateways.StartSource{Source: &gateways.EventSource{Name: "quiet", Data: "x"}}}}
	if err := stream.Send(start); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= events; i++ {
		ev, err := stream.Recv()
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		ack := &gateways.Ack{Seqs: []uint64{ev.GetSeq()}, Outcome: gateways.Ack_OUTCOME_DELIVERED}
		if err := stream.Send(&gateways.SourceControl{Control: &gateways.SourceControl_Ack{Ack: ack}}); err != nil {
			t.Fatalf("ack %d: %v", i, err)
		}
	}
	// Closing the connection ends both parsers.
	endCall()
	conn.Close()
	parsed := make(chan struct{})
	go func() { pings.parsers.Wait(); close(parsed) }()
	select {
	case <-parsed:
	case <-time.After(10 * time.Second):
		t.Fatal("the server did not close the connection within 10s of the client")
	}
	if c, s := pings.fromClient.Load(), pings.fromServer.Load(); c != 0 || s != 0 {
		t.Errorf("%d events, each acknowledged alone: the client sent %d pings and the server %d, want none", events, c, s)
	}
}
