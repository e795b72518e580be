package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"

	"github.com/eventgate/eventgate/protos/gateways"
	"github.com/eventgate/eventgate/tools/gwcat/conform"
)

func runConform(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	var c connFlags
	fs := newFlagSet("conform", `Check a gateway server, in any language, against the Eventing contract and what the
gateway-client relies on. Prints one line per check (PASS, WARN or FAIL, its name, why) and a
summary; exit 0 when no check fails (warnings allowed), 1 when one does, 2 for bad flags or
no gateway server at --addr.

Checks: `+strings.Join(conform.Checks, ", ")+`.
A gateway whose events come from outside (a webhook, a broker) needs --trigger: the command
runs while the kit waits for events of a source, again every --trigger-every, with
GWCAT_SOURCE (the source's name) and GWCAT_DATA (its YAML) in its environment.`, stderr)
	fs.StringVar(&c.addr, "addr", envOr("GWCAT_ADDR", defaultAddr), "gateway server address, host:port ($GWCAT_ADDR, when set, is the default)")
	fs.DurationVar(&c.dialTimeout, "dial-timeout", conform.DefaultTimeout, "how long to wait for the server to accept a gRPC connection")
	opts := conform.Options{}
	valid := fs.String("valid", "", "YAML of an event source the gateway must accept and start (@PATH: read it from a file)")
	valid2 := fs.String("valid2", "", "a second valid source, run beside --valid, for gateways where two sources of one config collide (one webhook endpoint, one MQTT client ID) (@PATH: a file; default --valid)")
	invalid := fs.String("invalid", "", "YAML of an event source the gateway must refuse (@PATH: read it from a file)")
	fs.StringVar(&opts.Name, "name", conform.DefaultName, "prefix of the event sources' names")
	fs.DurationVar(&opts.Timeout, "timeout", conform.DefaultTimeout, "bound on each wait of a check: an answer, an event, a stream's end")
	fs.DurationVar(&opts.Stall, "stall", conform.DefaultStall, "how long the slow-reader check leaves its stream unread")
	trigger := fs.String("trigger", "", "shell command that makes the source $GWCAT_SOURCE (YAML $GWCAT_DATA) produce an event")
	fs.DurationVar(&opts.TriggerEvery, "trigger-every", 250*time.Millisecond, "pause between --trigger runs while the kit waits for events")
	if _, exit, ok := parseArgs(fs, args, false); !ok {
		return exit
	}
	if err := c.check(); err != nil {
		return usageError(fs, err)
	}
	var err error
	for _, f := range []struct {
		flag string
		v    *string
		into *string
	}{{"--valid", valid, &opts.Valid}, {"--valid2", valid2, &opts.Valid2}, {"--invalid", invalid, &opts.Invalid}} {
		if *f.into, err = readYAML(f.flag, *f.v); err != nil {
			return usageError(fs, err)
		}
	}
	if opts.Valid == "" || opts.Invalid == "" {
		return usageError(fs, errors.New("--valid and --invalid are required: the kit needs a source to start and one to refuse"))
	}
	if opts.Timeout <= 0 || opts.Stall <= 0 || opts.TriggerEvery <= 0 || c.dialTimeout <= 0 {
		return usageError(fs, errors.New("--timeout, --stall, --trigger-every and --dial-timeout must be positive: every check has a deadline"))
	}
	if *trigger != "" {
		opts.Trigger = shellTrigger(*trigger, stderr)
	}

	conn, err := c.dial(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", fs.Name(), err)
		return exitUsage
	}
	defer conn.Close()
	opts.Conn = conn
	opts.Dial = func(ctx context.Context) (*grpc.ClientConn, error) { return c.dial(ctx) }
	if err := conform.Preflight(ctx, opts); err != nil {
		fmt.Fprintf(stderr, "%s: --addr %s: %v\n", fs.Name(), c.addr, err)
		return exitUsage
	}
	results := conform.Run(ctx, opts)
	counts := map[conform.Status]int{}
	for _, r := range results {
		fmt.Fprintln(stdout, r)
		counts[r.Status]++
	}
	fmt.Fprintf(stdout, "%s %s: %d passed, %d warned, %d failed\n", verdict(results), c.addr, counts[conform.Pass], counts[conform.Warn], counts[conform.Fail])
	if conform.Failed(results) {
		return exitFailed
	}
	return exitOK
}

func verdict(results []conform.Result) string {
	if conform.Failed(results) {
		return "NOT CONFORMING"
	}
	return "CONFORMING"
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// readYAML returns a flag's YAML: the value itself, or the file it names after "@".
func readYAML(flag, v string) (string, error) {
	path, ok := strings.CutPrefix(v, "@")
	if !ok {
		return v, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("%s: %w", flag, err)
	}
	return string(b), nil
}

// shellTrigger runs cmd through sh for the source es; its output goes to stderr, so that
// stdout keeps one line per check. Triggers of two sources run at once: their writes are
// serialised.
func shellTrigger(cmd string, stderr io.Writer) func(context.Context, *gateways.EventSource) error {
	stderr = &lockedWriter{w: stderr}
	return func(ctx context.Context, es *gateways.EventSource) error {
		sh := exec.CommandContext(ctx, "sh", "-c", cmd)
		sh.Env = append(os.Environ(), "GWCAT_SOURCE="+es.GetName(), "GWCAT_DATA="+es.GetData())
		sh.Stdout, sh.Stderr = stderr, stderr
		// A command's children may keep its output open after it is killed: do not wait.
		sh.WaitDelay = time.Second
		if err := sh.Run(); err != nil {
			return fmt.Errorf("--trigger: %w", err)
		}
		return nil
	}
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
