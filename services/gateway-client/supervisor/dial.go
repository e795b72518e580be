package supervisor

import (
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
)

// eventWindow is the client's fixed HTTP/2 flow-control window for events, per stream
// and per connection (the streams of every source placed on a server share one). gRPC's
// default, a window grown by BDP pings, sends a ping on the first data frame after each
// ping's answer; at a few events per millisecond that is a ping and its answer per event.
// Fixed, a stream has no pings at all. 1 MiB keeps a remote server streaming at full speed
// over a few milliseconds of round trip, and bounds what one StartEventSource stream (no
// acks: flow control is its only back-pressure) buffers while its sensors hold it back.
const eventWindow = 1 << 20

// Dial makes a connection to the gateway server at addr, shared by all the sources placed
// on it. It connects lazily and reconnects by itself; reconnect attempts are capped at one
// every 5 s (gRPC's default cap is 2 minutes), so that a restarted server gets its sources
// back within seconds. creds is insecure.NewCredentials() for plaintext.
func Dial(addr string, creds credentials.TransportCredentials) (*grpc.ClientConn, error) {
	conn, err := grpc.NewClient(addr,
		grpc.WithTransportCredentials(creds),
		grpc.WithStaticStreamWindowSize(eventWindow),
		grpc.WithStaticConnWindowSize(eventWindow),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 200 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 5 * time.Second},
			MinConnectTimeout: 5 * time.Second,
		}))
	if err != nil {
		return nil, fmt.Errorf("gateway server %s: %w", addr, err)
	}
	return conn, nil
}
