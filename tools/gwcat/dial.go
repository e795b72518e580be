package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// dial connects to the gateway server and waits, at most --dial-timeout, until the
// connection is ready. grpc.NewClient connects lazily: without the wait a wrong --addr
// would surface later as a failed or (waiting for ready) hanging call. Readiness is the
// connection's state rather than a health check, because not every gateway (a v0.10 custom
// gateway, say) serves grpc.health.v1.
func (c *connFlags) dial(ctx context.Context) (*grpc.ClientConn, error) {
	var d recordingDialer
	conn, err := grpc.NewClient(c.addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(d.dial),
		// Retry soon after a refused connection: people start gwcat while the server starts.
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second},
			MinConnectTimeout: 20 * time.Second, // gRPC's default; ConnectParams has no "unset"
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("--addr %s: %w", c.addr, err)
	}
	waitCtx, cancel := ctx, context.CancelFunc(func() {})
	if c.dialTimeout > 0 {
		waitCtx, cancel = context.WithTimeout(ctx, c.dialTimeout)
	}
	defer cancel()
	conn.Connect()
	for {
		state := conn.GetState()
		if state == connectivity.Ready {
			return conn, nil
		}
		if !conn.WaitForStateChange(waitCtx, state) {
			// The last error before Close, which cancels an attempt in flight.
			last := d.last()
			conn.Close()
			return nil, c.notReady(ctx, state, last)
		}
	}
}

// notReady says why no connection became ready, with the last dial error when there was one.
func (c *connFlags) notReady(ctx context.Context, state connectivity.State, dialErr error) error {
	why := "no answer yet"
	switch {
	case dialErr != nil:
		why = dialErr.Error()
	case state == connectivity.TransientFailure:
		why = "it accepts TCP connections but no gRPC (HTTP/2, plaintext) handshake: is it a gateway server?"
	}
	switch {
	case errors.Is(context.Cause(ctx), errTimeout):
		return fmt.Errorf("--addr %s: no gRPC server ready before --timeout %s: %s", c.addr, c.timeout, why)
	case ctx.Err() != nil:
		return fmt.Errorf("--addr %s: interrupted while waiting for the server: %s", c.addr, why)
	}
	return fmt.Errorf("--addr %s: no gRPC server ready within --dial-timeout %s: %s", c.addr, c.dialTimeout, why)
}

// recordingDialer dials TCP like gRPC does and keeps the last error, which gRPC itself only
// reveals through a failing call.
type recordingDialer struct {
	mu  sync.Mutex
	err error
}

func (d *recordingDialer) dial(ctx context.Context, addr string) (net.Conn, error) {
	var nd net.Dialer
	conn, err := nd.DialContext(ctx, "tcp", addr)
	d.mu.Lock()
	// An attempt cut short by its own cancellation (the wait is over, the connection
	// closes) says nothing about the server: the attempt before it does.
	if err == nil || ctx.Err() == nil || d.err == nil {
		d.err = err
	}
	d.mu.Unlock()
	return conn, err
}

func (d *recordingDialer) last() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.err
}

// callError describes a failed call by its gRPC code and message, or by --timeout.
func (c *connFlags) callError(ctx context.Context, method string, err error) error {
	if errors.Is(context.Cause(ctx), errTimeout) {
		return fmt.Errorf("%s: --timeout %s reached", method, c.timeout)
	}
	st := status.Convert(err)
	return fmt.Errorf("%s on %s: %s: %s", method, c.addr, st.Code(), st.Message())
}

// connect applies --timeout and dials the server. It reports a failure on stderr; on
// success done cancels the call's context (which is how a server learns to stop a
// source) and closes the connection.
func (c *connFlags) connect(ctx context.Context, command string, stderr io.Writer) (context.Context, *grpc.ClientConn, func(), bool) {
	ctx, cancel := c.withTimeout(ctx)
	conn, err := c.dial(ctx)
	if err != nil {
		cancel()
		fmt.Fprintf(stderr, "%s: %v\n", command, err)
		return ctx, nil, nil, false
	}
	return ctx, conn, func() { conn.Close(); cancel() }, true
}
