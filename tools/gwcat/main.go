// Command gwcat pokes a gateway server (any language) over its Eventing gRPC contract:
// validate an event source, start it and print its events as JSON lines, check health or
// list services, without a gateway-client or Kubernetes.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// Exit codes, the same for every command.
const (
	exitOK      = 0 // done: valid, serving, or the events asked for were printed
	exitFailed  = 1 // the server answered no: invalid source, failed stream, not serving
	exitUsage   = 2 // bad flags or input, or no server to talk to
	defaultAddr = "127.0.0.1:9330"
)

const usage = `usage: gwcat <command> [flags]

commands:
  validate   ValidateEventSource: prints "valid" or "invalid: <reason>"
  start      StartEventSource: prints each event as one JSON line
  health     grpc.health.v1 Check: prints SERVING, NOT_SERVING or SERVICE_UNKNOWN
  list       server reflection: prints the services the server offers
  conform    the conformance kit: checks the server against the contract, one line per check

Run "gwcat <command> -h" for its flags. Exit codes: 0 ok, 1 the server said no, 2 usage or
connection error.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// After the first signal, restore the default handling: a second Ctrl-C kills a gwcat
	// whose clean cancel got stuck.
	context.AfterFunc(ctx, stop)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is main without the process plumbing, so tests drive the exact code path of the CLI.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	commands := map[string]func(context.Context, []string, io.Reader, io.Writer, io.Writer) int{
		"validate": runValidate, "start": runStart, "health": runHealth, "list": runList,
		"conform": runConform,
	}
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	if cmd, ok := commands[args[0]]; ok {
		return cmd(ctx, args[1:], stdin, stdout, stderr)
	}
	if args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	fmt.Fprintf(stderr, "gwcat: unknown command %q\n\n%s", args[0], usage)
	return exitUsage
}
