// The gateway-client: reads a gateway's event sources, keeps them running on its gateway
// server, and delivers their events as CloudEvents to the gateway's sensors.
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
		fmt.Fprintln(os.Stderr, "gateway-client:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	cfg, err := parseFlags(args, os.Getenv)
	if err != nil {
		return err
	}
	log, err := logging.FromEnv(os.Stderr, os.Getenv)
	if err != nil {
		return err
	}
	if cfg.kubernetesMode() {
		return runKubernetes(ctx, cfg, log)
	}
	return runLocal(ctx, cfg, log)
}
