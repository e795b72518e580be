package main

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

type expectation struct {
	entrypoint string
	arch       string
	content    []byte // nil: any content
}

// checkTarball reports every problem at once, so one test run shows all that is wrong.
func checkTarball(path string, want expectation) error {
	// A nil tag loads the tarball's only image, and fails if there are several.
	img, err := tarball.ImageFromPath(path, nil)
	if err != nil {
		return fmt.Errorf("load %s: %w", path, err)
	}
	return checkImage(path, img, want)
}

// checkImage checks one image; where names it in errors.
func checkImage(path string, img v1.Image, want expectation) error {
	cfg, err := img.ConfigFile()
	if err != nil {
		return fmt.Errorf("%s: config: %w", path, err)
	}
	var problems []error
	if cfg.OS != "linux" || cfg.Architecture != want.arch {
		problems = append(problems, fmt.Errorf("platform is %s/%s, want linux/%s", cfg.OS, cfg.Architecture, want.arch))
	}
	if !slices.Equal(cfg.Config.Entrypoint, []string{want.entrypoint}) {
		problems = append(problems, fmt.Errorf("entrypoint is %q, want [%q]", cfg.Config.Entrypoint, want.entrypoint))
	}
	// An empty user means root, as does uid 0 or the name root.
	if uid, _, _ := strings.Cut(cfg.Config.User, ":"); uid == "" || uid == "0" || uid == "root" {
		problems = append(problems, fmt.Errorf("user is %q, want a non-root uid", cfg.Config.User))
	}
	problems = append(problems, checkEntrypointFile(img, want)...)
	if len(problems) > 0 {
		return fmt.Errorf("%s: %w", path, errors.Join(problems...))
	}
	return nil
}

// checkEntrypointFile looks the entrypoint up in the layers, the last layer winning as when a
// runtime unpacks them.
func checkEntrypointFile(img v1.Image, want expectation) []error {
	layers, err := img.Layers()
	if err != nil {
		return []error{fmt.Errorf("layers: %w", err)}
	}
	inTar := strings.TrimPrefix(want.entrypoint, "/")
	var (
		hdr  *tar.Header
		data []byte
	)
	for _, l := range layers {
		h, d, err := findFile(l, inTar)
		if err != nil {
			return []error{err}
		}
		if h != nil {
			hdr, data = h, d
		}
	}
	if hdr == nil {
		return []error{fmt.Errorf("no file %s in the image", want.entrypoint)}
	}
	var problems []error
	if hdr.Typeflag != tar.TypeReg {
		problems = append(problems, fmt.Errorf("%s is not a regular file (type %q)", want.entrypoint, hdr.Typeflag))
	}
	if perm := hdr.FileInfo().Mode().Perm(); perm != 0o755 {
		problems = append(problems, fmt.Errorf("%s has mode %v, want -rwxr-xr-x", want.entrypoint, perm))
	}
	if hdr.Uid != 0 || hdr.Gid != 0 {
		problems = append(problems, fmt.Errorf("%s is owned by %d:%d, want root (0:0) so the user cannot replace it", want.entrypoint, hdr.Uid, hdr.Gid))
	}
	if want.content != nil && !bytes.Equal(data, want.content) {
		problems = append(problems, fmt.Errorf("%s differs from the expected binary (%d bytes, want %d)", want.entrypoint, len(data), len(want.content)))
	}
	return problems
}

func findFile(l v1.Layer, name string) (*tar.Header, []byte, error) {
	rc, err := l.Uncompressed()
	if err != nil {
		return nil, nil, fmt.Errorf("layer: %w", err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil, nil, nil
		}
		if err != nil {
			return nil, nil, fmt.Errorf("layer: %w", err)
		}
		if strings.TrimPrefix(hdr.Name, "./") != name {
			continue
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			return nil, nil, fmt.Errorf("layer: %s: %w", name, err)
		}
		return hdr, data, nil
	}
}
