package main

import (
	"fmt"
	"io"
	"log"
	"net"
	"net/http"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// checkThroughRegistry pushes the tarball's image to a registry served in this process on a
// loopback port, pulls it back by digest and checks what came back: what a cluster would
// pull, not only what was written.
func checkThroughRegistry(path, repository string, want expectation) error {
	img, err := tarball.ImageFromPath(path, nil)
	if err != nil {
		return fmt.Errorf("load %s: %w", path, err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("listen for the test registry: %w", err)
	}
	srv := &http.Server{Handler: registry.New(registry.Logger(log.New(io.Discard, "", 0)))}
	go srv.Serve(lis)
	defer srv.Close()

	ref, err := name.ParseReference(lis.Addr().String()+"/"+repository+":check", name.Insecure)
	if err != nil {
		return fmt.Errorf("reference: %w", err)
	}
	if err := remote.Write(ref, img); err != nil {
		return fmt.Errorf("push %s: %w", ref, err)
	}
	digest, err := img.Digest()
	if err != nil {
		return fmt.Errorf("digest: %w", err)
	}
	pulled, err := remote.Image(ref.Context().Digest(digest.String()))
	if err != nil {
		return fmt.Errorf("pull %s@%s: %w", ref.Context(), digest, err)
	}
	return checkImage(ref.Context().String()+"@"+digest.String(), pulled, want)
}
