// Command imagecheck verifies an image tarball written by tools/image: the entrypoint is the
// expected binary (byte for byte when --binary is given), executable, owned by root, its
// aliases run the same binary, the CA bundle is a real one, and the image runs as a non-root
// user. go_image's <name>_test runs it on every service image.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "imagecheck:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("imagecheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		tarballPath = fs.String("tarball", "", "image tarball to check (required)")
		entrypoint  = fs.String("entrypoint", "", "the entrypoint the image must have, e.g. /bin/calendar (required)")
		binary      = fs.String("binary", "", "if set, the entrypoint file must have exactly these bytes")
		arch        = fs.String("arch", "amd64", "the architecture the image must declare")
		caCerts     = fs.String("ca-certs", "", "if set, the image must have a PEM CA bundle at this path, e.g. /etc/ssl/certs/ca-certificates.crt")
		minCACerts  = fs.Int("min-ca-certs", 50, "the fewest certificates the --ca-certs bundle may hold")
		aliases     stringList
		viaRegistry = fs.String("through-registry", "", "if set, also push the image as this repository to a registry on a loopback port, pull it back and check that")
	)
	fs.Var(&aliases, "alias", "a path that must run the entrypoint's binary, e.g. /bin/webhook-gateway (repeatable)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *tarballPath == "" || *entrypoint == "" || fs.NArg() > 0 {
		return errors.New("usage: imagecheck --tarball FILE --entrypoint /bin/NAME [--binary FILE] [--arch amd64] [--alias /bin/OTHER]... [--ca-certs PATH]")
	}
	want := expectation{entrypoint: *entrypoint, arch: *arch, aliases: aliases, caCerts: *caCerts, minCACerts: *minCACerts}
	if *binary != "" {
		data, err := os.ReadFile(*binary)
		if err != nil {
			return fmt.Errorf("binary: %w", err)
		}
		want.content = data
	}
	if err := checkTarball(*tarballPath, want); err != nil {
		return err
	}
	if *viaRegistry != "" {
		if err := checkThroughRegistry(*tarballPath, *viaRegistry, want); err != nil {
			return err
		}
	}
	extra := ""
	if len(aliases) > 0 {
		extra += ", aliases " + aliases.String()
	}
	if *caCerts != "" {
		extra += ", CA bundle " + *caCerts
	}
	_, err := fmt.Fprintf(stdout, "%s: ok (entrypoint %s%s, non-root user, %s)\n", *tarballPath, *entrypoint, extra, *arch)
	return err
}

// stringList is a repeatable flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }
