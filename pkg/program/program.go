// Package program is the life cycle every eventgate command shares: a context that ends on
// SIGTERM or Ctrl-C, the logger from LOG_LEVEL/LOG_FORMAT, span export when
// OTEL_EXPORTER_OTLP_ENDPOINT is set, and one exit path with the
// command's name on the error.
package program

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/eventgate/eventgate/pkg/logging"
	"github.com/eventgate/eventgate/pkg/tracing"
)

// Run is the body of a command: it returns when ctx ends (or earlier, with an error).
type Run func(ctx context.Context, args []string, log *slog.Logger) error

// Main runs run with the process's arguments and exits: 0 after a clean return or -h, else
// 1 with "name: error" on stderr. Before run, it releases the pages the package inits mapped
// in (ReleaseStartPages).
func Main(name string, run Run) {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	started := func(ctx context.Context, args []string, log *slog.Logger) error {
		ReleaseStartPages(os.Getenv, log)
		return run(ctx, args, log)
	}
	code := exitCode(name, execute(ctx, name, os.Args[1:], os.Getenv, os.Stderr, started), os.Stderr)
	stop()
	os.Exit(code)
}

func execute(ctx context.Context, name string, args []string, getenv func(string) string, stderr io.Writer, run Run) error {
	log, err := logging.FromEnv(stderr, getenv)
	if err != nil {
		return err
	}
	stopTracing, err := tracing.Start(ctx, name, getenv)
	if err != nil {
		return err
	}
	defer tracing.Stop(stopTracing, log)
	return run(ctx, args, log)
}

func exitCode(name string, err error, stderr io.Writer) int {
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	default:
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 1
	}
}
