// The sensor: a CloudEvents sink (HTTP and NATS) that prints what it receives, for the demo
// and for the gateway-client's end-to-end and fault tests. See pkg/sensorsink.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/eventgate/eventgate/pkg/logging"
	"github.com/eventgate/eventgate/pkg/sensorsink"
)

func main() {
	cfg, err := parseConfig(os.Args[1:], os.LookupEnv, os.Stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
		os.Exit(0)
	case err != nil:
		fmt.Fprintf(os.Stderr, "sensor: %s (sensor -h lists the flags)\n", strings.ReplaceAll(err.Error(), "\n", "; "))
		os.Exit(2)
	}
	log, err := logging.FromEnv(os.Stderr, os.Getenv)
	if err == nil {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
		err = sensorsink.New(sensorsink.WithLogger(log), sensorsink.WithOutput(os.Stdout, cfg.format),
			sensorsink.WithMode(cfg.mode), sensorsink.WithFailFirst(cfg.failFirst)).Run(ctx, cfg.endpoints)
		stop()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "sensor: %v\n", err)
		os.Exit(1)
	}
}
