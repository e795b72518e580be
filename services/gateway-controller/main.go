// The gateway-controller: turns each Gateway resource (argoproj.io/v1alpha1) that carries its
// instance ID into the Deployment and Service that run the gateway, and reports their phase.
package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/eventgate/eventgate/pkg/program"
)

func main() { program.Main("gateway-controller", run) }

func run(ctx context.Context, args []string, log *slog.Logger) error {
	opts, err := parseFlags(args, os.Getenv)
	if err != nil {
		return err
	}
	return runController(ctx, opts, log)
}
