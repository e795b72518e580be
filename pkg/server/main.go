package server

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/eventgate/eventgate/pkg/logging"
)

// Main runs gw as a gateway server process: it reads the GATEWAY_* environment, logs
// through slog, serves until SIGTERM or SIGINT, stops gracefully and exits. It is all a
// gateway's main function calls.
func Main(gw Gateway) {
	if err := run(gw); err != nil {
		fmt.Fprintf(os.Stderr, "%s gateway: %v\n", gw.Type(), err)
		os.Exit(1)
	}
}

func run(gw Gateway) error {
	log, err := logging.FromEnv(os.Stderr, os.Getenv)
	if err != nil {
		return err
	}
	env, err := EnvFrom(os.LookupEnv)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	log = log.With("gatewayName", env.Name, "namespace", env.Namespace)
	return New(gw, WithLogger(log)).ListenAndServe(ctx, env.Address())
}
