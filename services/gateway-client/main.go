// The gateway-client: reads a gateway's event sources, keeps them running on its gateway
// server, and delivers their events as CloudEvents to the gateway's sensors.
package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/eventgate/eventgate/pkg/program"
)

func main() {
	// One thread runs Go code at a time unless GOMAXPROCS says otherwise: program.DefaultProcs
	// says why. Here, not in run, which tests call in their own process.
	program.LimitProcs(os.Getenv)
	program.Main("gateway-client", run)
}

func run(ctx context.Context, args []string, log *slog.Logger) error {
	cfg, err := parseFlags(args, os.Getenv)
	if err != nil {
		return err
	}
	if cfg.kubernetesMode() {
		return runKubernetes(ctx, cfg, log)
	}
	return runLocal(ctx, cfg, log)
}
