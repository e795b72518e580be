// Command pushall pushes image tarballs built by go_image to one registry prefix, printing one
// REGISTRY/PREFIX/NAME:TAG@DIGEST line per image. //deploy:push runs it with every service's
// image:
//
//	tools/bazel run //deploy:push -- --registry 127.0.0.1:5000/eventgate [--tag v1]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/eventgate/eventgate/tools/image/publish"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "push:", err)
		os.Exit(1)
	}
}

// imageList is the repeatable --image flag.
type imageList []publish.Image

func (l *imageList) String() string {
	var names []string
	for _, im := range *l {
		names = append(names, im.Name)
	}
	return strings.Join(names, ",")
}

func (l *imageList) Set(v string) error {
	im, err := publish.ParseImage(v)
	if err != nil {
		return err
	}
	*l = append(*l, im)
	return nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("push", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		registry = fs.String("registry", "", "where to push, HOST[:PORT]/PREFIX: each image goes to HOST[:PORT]/PREFIX/<name> (required)")
		tag      = fs.String("tag", "latest", "the tag every image gets")
		insecure = fs.Bool("insecure", false, "allow plain HTTP to a registry that is not on loopback (loopback registries use HTTP anyway)")
		images   imageList
	)
	fs.Var(&images, "image", "NAME=TARBALL, an image to push as <registry>/NAME (repeatable; set by //deploy:push)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q: everything is a flag", fs.Args())
	}
	target, err := publish.ParseTarget(*registry, *tag, *insecure)
	if err != nil {
		return err
	}
	if len(images) == 0 {
		return errors.New("no --image to push")
	}
	return publish.PushAll(ctx, target, images, stdout)
}
