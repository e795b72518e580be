package server

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/eventgate/eventgate/pkg/logging"
	"github.com/eventgate/eventgate/pkg/program"
	"github.com/eventgate/eventgate/pkg/tracing"
)

// Main runs gw as a gateway server process: it reads the GATEWAY_* environment, logs
// through slog, serves until SIGTERM or SIGINT, stops gracefully and exits. Unless
// GOMAXPROCS is set, the process runs Go code on one thread at a time (program.DefaultProcs
// says why), and once set up it releases the pages its start mapped in
// (program.ReleaseStartPages says why). It is all a gateway's main function calls.
func Main(gw Gateway) {
	mainFor(gw.Type(), func(Env) Gateway { return gw })
}

// MainFor is Main for a gateway that needs the validated environment to be built, such as
// one that opens its own listeners on env.SourceHost.
func MainFor(build func(Env) Gateway) {
	mainFor(filepath.Base(os.Args[0]), build)
}

// mainFor names the process by name until the gateway is built, by its type after.
func mainFor(name string, build func(Env) Gateway) {
	if err := run(&name, build); err != nil {
		fmt.Fprintf(os.Stderr, "%s gateway: %v\n", name, err)
		os.Exit(1)
	}
}

func run(name *string, build func(Env) Gateway) error {
	program.LimitProcs(os.Getenv)
	log, err := logging.FromEnv(os.Stderr, os.Getenv)
	if err != nil {
		return err
	}
	env, err := EnvFrom(os.LookupEnv)
	if err != nil {
		return err
	}
	tlsConfig, err := env.TLSConfig()
	if err != nil {
		return err
	}
	gw := build(env)
	*name = gw.Type()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	log = log.With("gatewayName", env.Name, "namespace", env.Namespace)
	stopTracing, err := tracing.Start(ctx, gw.Type()+"-gateway", os.Getenv)
	if err != nil {
		return err
	}
	defer tracing.Stop(stopTracing, log)
	srv := New(gw, WithLogger(log), WithTLS(tlsConfig))
	program.ReleaseStartPages(os.Getenv, log)
	return srv.ListenAndServe(ctx, env.Address())
}
