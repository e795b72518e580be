// The gateway-controller: turns each Gateway resource (argoproj.io/v1alpha1) that carries its
// instance ID into the Deployment and Service that run the gateway, and reports their phase.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/eventgate/eventgate/pkg/logging"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "gateway-controller:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	opts, err := parseFlags(args, os.Getenv)
	if err != nil {
		return err
	}
	log, err := logging.FromEnv(os.Stderr, os.Getenv)
	if err != nil {
		return err
	}
	return runController(ctx, opts, log)
}
