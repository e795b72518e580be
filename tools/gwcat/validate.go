package main

import (
	"context"
	"fmt"
	"io"

	"github.com/eventgate/eventgate/protos/gateways"
)

func runValidate(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	var c connFlags
	var s sourceFlags
	fs := newFlagSet("validate", `Ask the server whether an event source is valid. Prints "valid" (exit 0) or
"invalid: <reason>" (exit 1).`, stderr)
	c.register(fs)
	s.register(fs)
	dash, exit, ok := parseArgs(fs, args, true)
	if !ok {
		return exit
	}
	if err := c.check(); err != nil {
		return usageError(fs, err)
	}
	es, err := s.eventSource(stdin, dash)
	if err != nil {
		return usageError(fs, err)
	}

	ctx, conn, done, ok := c.connect(ctx, fs.Name(), stderr)
	if !ok {
		return exitUsage
	}
	defer done()
	resp, err := gateways.NewEventingClient(conn).ValidateEventSource(ctx, es)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", fs.Name(), c.callError(ctx, "ValidateEventSource", err))
		return exitUsage
	}
	if !resp.GetIsValid() {
		fmt.Fprintf(stdout, "invalid: %s\n", resp.GetReason())
		return exitFailed
	}
	fmt.Fprintln(stdout, "valid")
	return exitOK
}
