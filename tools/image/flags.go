package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/eventgate/eventgate/tools/image/publish"
)

// options is the parsed and validated command line.
type options struct {
	image      imageSpec
	tarball    string
	tarballTag name.Tag // the name `docker load` gives the image
	layout     string
	push       name.Reference // nil: do not push
	quiet      bool
}

// stringList is a repeatable flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

func parseFlags(args []string, stderr io.Writer) (options, error) {
	fs := flag.NewFlagSet("image", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		binary     = fs.String("binary", "", "path of the static binary to put in the image (required)")
		binName    = fs.String("name", "", "file name of the binary in the image, /bin/<name> (default: base name of --binary)")
		repository = fs.String("repository", "", "repository the tarball is tagged with (default: eventgate/<name>)")
		tag        = fs.String("tag", "latest", "tag the tarball is tagged with")
		arch       = fs.String("arch", "amd64", "CPU architecture of the binary and the image (amd64 or arm64)")
		tarball    = fs.String("tarball", "", "write a docker-loadable tarball to this file")
		layout     = fs.String("oci-layout", "", "write an OCI image layout into this directory")
		pushRef    = fs.String("push", "", "push the image to this reference, REGISTRY/REPO[:TAG]")
		insecure   = fs.Bool("insecure", false, "allow plain HTTP to the --push registry (loopback registries use HTTP anyway)")
		quiet      = fs.Bool("quiet", false, "log errors only (build actions stay silent unless they fail)")
		env, ports stringList
		aliases    stringList
	)
	fs.Var(&aliases, "alias", "another name for the binary under /bin, a symlink to it (repeatable), e.g. webhook-gateway")
	fs.Var(&env, "env", "KEY=VALUE added to the image's environment (repeatable)")
	fs.Var(&ports, "port", "port the image exposes, PORT or PORT/PROTO (repeatable)")
	if err := fs.Parse(args); err != nil {
		return options{}, err
	}
	if fs.NArg() > 0 {
		return options{}, fmt.Errorf("unexpected arguments %q: everything is a flag", fs.Args())
	}

	if *binary == "" {
		return options{}, errors.New("--binary is required")
	}
	if *binName == "" {
		*binName = filepath.Base(*binary)
	}
	if *binName == "." || *binName == ".." || strings.ContainsAny(*binName, "/\x00") {
		return options{}, fmt.Errorf("--name %q: must be a plain file name", *binName)
	}
	seen := map[string]bool{*binName: true}
	for _, a := range aliases {
		if a == "." || a == ".." || a == "" || strings.ContainsAny(a, "/\x00") {
			return options{}, fmt.Errorf("--alias %q: must be a plain file name", a)
		}
		if seen[a] {
			return options{}, fmt.Errorf("--alias %q: /bin/%s is already in the image", a, a)
		}
		seen[a] = true
	}
	if *repository == "" {
		*repository = "eventgate/" + *binName
	}
	if *tarball == "" && *layout == "" && *pushRef == "" {
		return options{}, errors.New("nothing to do: give --tarball, --oci-layout and/or --push")
	}
	if *arch != "amd64" && *arch != "arm64" {
		return options{}, fmt.Errorf("--arch %q: want amd64 or arm64", *arch)
	}

	opts := options{
		image:   imageSpec{binary: *binary, name: *binName, aliases: aliases, arch: *arch},
		tarball: *tarball,
		layout:  *layout,
		quiet:   *quiet,
	}
	var err error
	// An empty tag would silently become "latest"; say so instead.
	if *tag == "" {
		return options{}, errors.New("--tag must not be empty")
	}
	opts.tarballTag, err = name.NewTag(*repository + ":" + *tag)
	if err != nil {
		return options{}, fmt.Errorf("--repository %q --tag %q: %w", *repository, *tag, err)
	}
	if *pushRef != "" {
		opts.push, err = publish.ParseReference(*pushRef, *insecure)
		if err != nil {
			return options{}, fmt.Errorf("--push %q: %w", *pushRef, err)
		}
	}
	for _, kv := range env {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			return options{}, fmt.Errorf("--env %q: want KEY=VALUE", kv)
		}
	}
	opts.image.env = env
	for _, p := range ports {
		port, err := parsePort(p)
		if err != nil {
			return options{}, err
		}
		opts.image.ports = append(opts.image.ports, port)
	}
	if opts.image.created, err = createdTime(); err != nil {
		return options{}, err
	}
	return opts, nil
}

// parsePort normalises "9330" to the config's key form "9330/tcp".
func parsePort(s string) (string, error) {
	num, proto, found := strings.Cut(s, "/")
	if !found {
		proto = "tcp"
	}
	if n, err := strconv.Atoi(num); err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("--port %q: want a port number 1-65535, optionally /tcp or /udp", s)
	}
	if proto != "tcp" && proto != "udp" && proto != "sctp" {
		return "", fmt.Errorf("--port %q: protocol %q: want tcp, udp or sctp", s, proto)
	}
	return num + "/" + proto, nil
}
