// Command image builds a minimal OCI image around one static Go binary, without a container
// daemon, and writes it as a docker-loadable tarball, an OCI layout and/or pushes it to a registry.
//
// The image has no base (no shell, no libc), so the binary must be statically linked: build it
// with CGO_ENABLED=0, or with pure = "on" on its go_binary under Bazel.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/eventgate/eventgate/tools/image/publish"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

// run is main without the process plumbing, so tests drive the exact code path of the CLI.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	opts, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	level := slog.LevelInfo
	if opts.quiet {
		level = slog.LevelError
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	img, err := buildImage(opts.image)
	if err != nil {
		return err
	}
	digest, err := img.Digest()
	if err != nil {
		return fmt.Errorf("compute image digest: %w", err)
	}
	if opts.tarball != "" {
		if err := writeTarball(opts.tarball, opts.tarballTag, img); err != nil {
			return err
		}
		// `docker load` names an image by its config digest (the image ID), not the manifest digest.
		id, err := img.ConfigName()
		if err != nil {
			return fmt.Errorf("compute image ID: %w", err)
		}
		log.Info("wrote tarball", "path", opts.tarball, "tag", opts.tarballTag.String(), "imageID", id.String())
	}
	if opts.layout != "" {
		if err := writeLayout(opts.layout, opts.tarballTag, img); err != nil {
			return err
		}
		log.Info("wrote OCI layout", "path", opts.layout, "digest", digest.String())
	}
	if opts.push != nil {
		if err := publish.Push(ctx, opts.push, img); err != nil {
			return err
		}
		log.Info("pushed", "ref", opts.push.Context().Digest(digest.String()).String())
	}
	// The digest alone on stdout, so scripts can capture it.
	_, err = fmt.Fprintln(stdout, digest.String())
	return err
}
