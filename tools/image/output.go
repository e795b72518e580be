package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// writeTarball writes through a temp file and renames it, so a failed or interrupted build
// never leaves a truncated tarball where Bazel or `docker load` would pick it up.
func writeTarball(path string, tag name.Tag, img v1.Image) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".image-*.tar")
	if err != nil {
		return fmt.Errorf("write tarball: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	if err := tarball.Write(tag, img, tmp); err != nil {
		tmp.Close()
		return fmt.Errorf("write tarball %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write tarball %s: %w", path, err)
	}
	// CreateTemp makes the file 0600; a build output should be readable like any other.
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return fmt.Errorf("write tarball %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write tarball: %w", err)
	}
	return nil
}

// writeLayout (re)writes the layout's index to hold just this image, named by its tag; blobs
// of earlier images stay in blobs/ until someone garbage-collects, which is harmless.
func writeLayout(dir string, tag name.Tag, img v1.Image) error {
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return fmt.Errorf("write OCI layout %s: %w", dir, err)
	}
	annotations := map[string]string{"org.opencontainers.image.ref.name": tag.String()}
	if err := p.AppendImage(img, layout.WithAnnotations(annotations)); err != nil {
		return fmt.Errorf("write OCI layout %s: %w", dir, err)
	}
	return nil
}
