package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"time"
)

// connFlags say how to reach the gateway server; every command has them.
type connFlags struct {
	addr        string
	dialTimeout time.Duration
	timeout     time.Duration
}

func (c *connFlags) register(fs *flag.FlagSet) {
	addr := os.Getenv("GWCAT_ADDR")
	if addr == "" {
		addr = defaultAddr
	}
	fs.StringVar(&c.addr, "addr", addr, "gateway server address, host:port ($GWCAT_ADDR, when set, is the default)")
	fs.DurationVar(&c.dialTimeout, "dial-timeout", 5*time.Second, "how long to wait for the server to accept a gRPC connection (0: no limit)")
	fs.DurationVar(&c.timeout, "timeout", 0, "bound on the whole command, connecting included (0: no limit)")
}

func (c *connFlags) check() error {
	if _, _, err := net.SplitHostPort(c.addr); err != nil {
		return fmt.Errorf("--addr %q: want host:port, e.g. %s", c.addr, defaultAddr)
	}
	if c.dialTimeout < 0 {
		return fmt.Errorf("--dial-timeout %s: must not be negative", c.dialTimeout)
	}
	if c.timeout < 0 {
		return fmt.Errorf("--timeout %s: must not be negative", c.timeout)
	}
	return nil
}

// errTimeout is the cause of a context ended by --timeout, which start tells apart from an
// interrupt: an interrupt is how a person ends it, a timeout may leave --count unmet.
var errTimeout = errors.New("--timeout reached")

// withTimeout bounds ctx by --timeout. It cancels rather than sets a deadline: gRPC would
// pass a deadline on to the server, whose DeadlineExceeded can then arrive before ctx
// ends, and a timeout would look like a failed call.
func (c *connFlags) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(ctx)
	if c.timeout == 0 {
		return ctx, func() { cancel(nil) }
	}
	timer := time.AfterFunc(c.timeout, func() { cancel(errTimeout) })
	return ctx, func() { timer.Stop(); cancel(nil) }
}

// newFlagSet returns the flags of one command; its errors and -h go to stderr.
func newFlagSet(name, summary string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("gwcat "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: gwcat %s [flags]\n\n%s\n\nflags:\n", name, summary)
		fs.PrintDefaults()
	}
	return fs
}

// parseArgs parses args into fs. With stdinOK, a lone "-" (read the event source from
// stdin) may stand anywhere among the flags; the flag package stops at it, so parsing
// resumes after it. ok is false when the command must end with exit: 0 for -h, 2 for a bad
// flag (the flag package has said why).
func parseArgs(fs *flag.FlagSet, args []string, stdinOK bool) (stdin bool, exit int, ok bool) {
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return false, exitOK, false
			}
			return false, exitUsage, false
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return stdin, exitOK, true
		}
		if rest[0] != "-" || !stdinOK {
			return false, usageError(fs, fmt.Errorf("unexpected argument %q: everything else is a flag", rest[0])), false
		}
		stdin, args = true, rest[1:]
	}
}

// usageError reports a problem with the command line and returns the usage exit code.
func usageError(fs *flag.FlagSet, err error) int {
	fmt.Fprintf(fs.Output(), "%s: %v\nRun \"%s -h\" for the flags.\n", fs.Name(), err, fs.Name())
	return exitUsage
}
