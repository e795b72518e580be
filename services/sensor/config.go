package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"strconv"

	"github.com/eventgate/eventgate/pkg/sensorsink"
)

// config is the sensor's command line. Each flag can also come from its environment
// variable (for containers); a flag given on the command line wins.
type config struct {
	endpoints sensorsink.Endpoints
	format    sensorsink.Format
	mode      sensorsink.Mode
	failFirst int
}

// parseConfig reads args (without the program name) and the environment through
// lookupEnv, and returns every problem at once, each naming the flag or variable it came
// from. Usage goes to usageOut on -h, and flag.ErrHelp is returned.
func parseConfig(args []string, lookupEnv func(string) (string, bool), usageOut io.Writer) (config, error) {
	fs := flag.NewFlagSet("sensor", flag.ContinueOnError)
	fs.SetOutput(usageOut)
	envOf := map[string]string{}
	str := func(name, env, def, usage string) *string {
		envOf[name] = env
		if v, ok := lookupEnv(env); ok {
			def = v
		}
		return fs.String(name, def, fmt.Sprintf("%s (env %s)", usage, env))
	}
	httpAddr := str("http", "SENSOR_HTTP", "127.0.0.1:9300", `HTTP listen address for events, /healthz and /control; "" turns HTTP off`)
	natsURL := str("nats-url", "SENSOR_NATS_URL", "", "NATS server URL to take events from; NATS is off without it")
	natsSubject := str("nats-subject", "SENSOR_NATS_SUBJECT", "", "NATS subject to subscribe to (required with --nats-url)")
	output := str("output", "SENSOR_OUTPUT", "pretty", "how to print events: pretty (one short line each) or json (the whole event)")
	mode := str("mode", "SENSOR_MODE", "ok", "ok; fail (HTTP 503, NATS drop: senders retry); stall (hold deliveries). PUT /control/mode changes it")
	failFirst := str("fail-first", "SENSOR_FAIL_FIRST", "0", "fail the first N deliveries whatever the mode")
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected arguments %q: every setting is a flag", fs.Args())
	}

	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var errs []error
	bad := func(name string, err error) {
		from := "--" + name
		if _, inEnv := lookupEnv(envOf[name]); inEnv && !given[name] {
			from = envOf[name]
		}
		errs = append(errs, fmt.Errorf("%s: %w", from, err))
	}

	var cfg config
	var err error
	if cfg.format, err = sensorsink.ParseFormat(*output); err != nil {
		bad("output", err)
	}
	if cfg.mode, err = sensorsink.ParseMode(*mode); err != nil {
		bad("mode", err)
	}
	if cfg.failFirst, err = strconv.Atoi(*failFirst); err != nil || cfg.failFirst < 0 {
		bad("fail-first", fmt.Errorf("%q is not a count", *failFirst))
	}
	if *httpAddr != "" {
		if _, _, err := net.SplitHostPort(*httpAddr); err != nil {
			bad("http", fmt.Errorf("%q is not host:port", *httpAddr))
		}
	}
	switch {
	case *natsURL != "" && *natsSubject == "":
		bad("nats-subject", errors.New("required with a NATS URL"))
	case *natsURL == "" && *natsSubject != "":
		bad("nats-url", fmt.Errorf("required with a NATS subject (%q)", *natsSubject))
	case *natsURL == "" && *httpAddr == "":
		bad("http", errors.New("empty and no NATS URL either: nothing to listen on"))
	}
	cfg.endpoints = sensorsink.Endpoints{HTTP: *httpAddr, NATSURL: *natsURL, NATSSubject: *natsSubject}
	return cfg, errors.Join(errs...)
}
