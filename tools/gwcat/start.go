package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/eventgate/eventgate/protos/gateways"
)

func runStart(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	var c connFlags
	var s sourceFlags
	fs := newFlagSet("start", `Start an event source and print each of its events as one JSON line on stdout.
Ends with exit 0 after --count events, on SIGINT/SIGTERM, at --timeout when --count is 0,
or when the server ends the stream; with exit 1 when the source is invalid or fails, or
when --timeout or the server's end leaves --count unmet.`, stderr)
	c.register(fs)
	s.register(fs)
	count := fs.Int("count", 0, "stop after this many events (0: until interrupted, --timeout or the stream's end)")
	validate := fs.Bool("validate", true, "call ValidateEventSource first, so that an invalid source gives its reason")
	dash, exit, ok := parseArgs(fs, args, true)
	if !ok {
		return exit
	}
	if err := c.check(); err != nil {
		return usageError(fs, err)
	}
	if *count < 0 {
		return usageError(fs, fmt.Errorf("--count %d: must not be negative", *count))
	}
	es, err := s.eventSource(stdin, dash)
	if err != nil {
		return usageError(fs, err)
	}

	ctx, cancel := c.withTimeout(ctx)
	// Cancelling the call is how the server learns to stop the source: every return cancels.
	defer cancel()
	conn, err := c.dial(ctx)
	if err != nil {
		if interrupted(ctx) {
			return exitOK
		}
		fmt.Fprintf(stderr, "%s: %v\n", fs.Name(), err)
		return exitUsage
	}
	defer conn.Close()
	client := gateways.NewEventingClient(conn)
	if *validate {
		resp, err := client.ValidateEventSource(ctx, es)
		switch {
		case interrupted(ctx):
			return exitOK
		case err != nil:
			fmt.Fprintf(stderr, "%s: %v\n", fs.Name(), c.callError(ctx, "ValidateEventSource", err))
			return exitUsage
		case !resp.GetIsValid():
			fmt.Fprintf(stderr, "invalid: %s\n", resp.GetReason())
			return exitFailed
		}
	}

	stream, err := client.StartEventSource(ctx, es)
	if err != nil {
		return streamEnded(ctx, fs, &c, err, 0, *count)
	}
	for n := 0; *count == 0 || n < *count; n++ {
		ev, err := stream.Recv()
		if err != nil {
			return streamEnded(ctx, fs, &c, err, n, *count)
		}
		if err := printEvent(stdout, ev); err != nil {
			fmt.Fprintf(stderr, "%s: write event: %v\n", fs.Name(), err)
			return exitFailed
		}
	}
	return exitOK
}

// streamEnded turns the end of the stream before --count events into an exit code.
func streamEnded(ctx context.Context, fs *flag.FlagSet, c *connFlags, err error, n, count int) int {
	stderr := fs.Output()
	switch {
	case interrupted(ctx):
		return exitOK
	case ctx.Err() != nil && count == 0:
		return exitOK // --timeout was the planned end
	case ctx.Err() != nil:
		fmt.Fprintf(stderr, "%s: --timeout %s reached after %d of %d events\n", fs.Name(), c.timeout, n, count)
	case errors.Is(err, io.EOF) && count == 0:
		fmt.Fprintf(stderr, "%s: the server ended the stream after %d events\n", fs.Name(), n)
		return exitOK
	case errors.Is(err, io.EOF):
		fmt.Fprintf(stderr, "%s: the server ended the stream after %d of %d events\n", fs.Name(), n, count)
	case status.Code(err) == codes.InvalidArgument:
		fmt.Fprintf(stderr, "invalid: %s\n", status.Convert(err).Message())
	default:
		fmt.Fprintf(stderr, "%s: stream failed after %d events: %v\n", fs.Name(), n, c.callError(ctx, "StartEventSource", err))
	}
	return exitFailed
}

// interrupted is true once SIGINT or SIGTERM (the caller's context) ended the command: a
// person stopping gwcat is a clean end, not an error.
func interrupted(ctx context.Context) bool {
	return ctx.Err() != nil && !errors.Is(context.Cause(ctx), errTimeout)
}
