package main

import (
	"archive/tar"
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

type expectation struct {
	entrypoint string
	arch       string
	content    []byte   // nil: any content
	aliases    []string // more paths that must run the entrypoint's binary
	caCerts    string   // "": no CA bundle expected
	minCACerts int
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
	fs, err := imageFiles(img)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	problems = append(problems, checkEntrypointFile(fs, want)...)
	problems = append(problems, checkAliases(fs, want)...)
	problems = append(problems, checkCACerts(fs, want)...)
	if len(problems) > 0 {
		return fmt.Errorf("%s: %w", path, errors.Join(problems...))
	}
	return nil
}

// files is the image's file system as a runtime unpacks it: every layer in order, the last
// one writing a path winning.
type files map[string]file

type file struct {
	hdr  *tar.Header
	data []byte
}

func imageFiles(img v1.Image) (files, error) {
	layers, err := img.Layers()
	if err != nil {
		return nil, fmt.Errorf("layers: %w", err)
	}
	fs := files{}
	for _, l := range layers {
		if err := readLayer(l, fs); err != nil {
			return nil, err
		}
	}
	return fs, nil
}

// resolve follows symlinks (relative to their folder, or absolute) and hard links inside the
// image to the file a path names, as exec would.
func (fs files) resolve(p string) (file, error) {
	p = path.Clean("/" + p)
	for hops := 0; hops < 10; hops++ {
		f, ok := fs[strings.TrimPrefix(p, "/")]
		if !ok {
			return file{}, fmt.Errorf("no file %s in the image", p)
		}
		switch f.hdr.Typeflag {
		case tar.TypeSymlink:
			if path.IsAbs(f.hdr.Linkname) {
				p = path.Clean(f.hdr.Linkname)
			} else {
				p = path.Join(path.Dir(p), f.hdr.Linkname)
			}
		case tar.TypeLink:
			p = path.Clean("/" + f.hdr.Linkname)
		default:
			return f, nil
		}
	}
	return file{}, fmt.Errorf("%s: too many links", p)
}

// checkEntrypointFile checks the entrypoint itself: a regular file, not a link.
func checkEntrypointFile(fs files, want expectation) []error {
	f, ok := fs[strings.TrimPrefix(want.entrypoint, "/")]
	if !ok {
		return []error{fmt.Errorf("no file %s in the image", want.entrypoint)}
	}
	hdr, data := f.hdr, f.data
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

// checkAliases checks that each alias (v0.10's /bin/<type>-gateway) runs the entrypoint's
// binary: it resolves, through links, to a file with the same bytes.
func checkAliases(fs files, want expectation) []error {
	ep, err := fs.resolve(want.entrypoint)
	if err != nil {
		return nil // checkEntrypointFile reports it
	}
	var problems []error
	for _, alias := range want.aliases {
		f, err := fs.resolve(alias)
		switch {
		case err != nil:
			problems = append(problems, fmt.Errorf("alias %s: %w", alias, err))
		case f.hdr.Typeflag != tar.TypeReg:
			problems = append(problems, fmt.Errorf("alias %s: not a regular file (type %q)", alias, f.hdr.Typeflag))
		case !bytes.Equal(f.data, ep.data):
			problems = append(problems, fmt.Errorf("alias %s differs from %s (%d bytes, want %d)", alias, want.entrypoint, len(f.data), len(ep.data)))
		case f.hdr.FileInfo().Mode().Perm()&0o111 == 0:
			problems = append(problems, fmt.Errorf("alias %s is not executable (mode %v)", alias, f.hdr.FileInfo().Mode().Perm()))
		}
	}
	return problems
}

// checkCACerts checks the CA bundle TLS clients read: present, all PEM certificates that
// parse, and enough of them to be a real root store.
func checkCACerts(fs files, want expectation) []error {
	if want.caCerts == "" {
		return nil
	}
	f, err := fs.resolve(want.caCerts)
	if err != nil {
		return []error{fmt.Errorf("CA bundle: %w", err)}
	}
	var problems []error
	n := 0
	for rest := f.data; len(bytes.TrimSpace(rest)) > 0; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			problems = append(problems, fmt.Errorf("CA bundle %s: text after certificate %d is not PEM", want.caCerts, n))
			break
		}
		n++
		if block.Type != "CERTIFICATE" {
			problems = append(problems, fmt.Errorf("CA bundle %s: block %d is a %q, want CERTIFICATE", want.caCerts, n, block.Type))
			continue
		}
		if _, err := x509.ParseCertificate(block.Bytes); err != nil {
			problems = append(problems, fmt.Errorf("CA bundle %s: certificate %d: %w", want.caCerts, n, err))
		}
	}
	if n < want.minCACerts {
		problems = append(problems, fmt.Errorf("CA bundle %s has %d certificates, want at least %d", want.caCerts, n, want.minCACerts))
	}
	if perm := f.hdr.FileInfo().Mode().Perm(); perm&0o004 == 0 {
		problems = append(problems, fmt.Errorf("CA bundle %s has mode %v: the non-root user cannot read it", want.caCerts, perm))
	}
	return problems
}

func readLayer(l v1.Layer, fs files) error {
	rc, err := l.Uncompressed()
	if err != nil {
		return fmt.Errorf("layer: %w", err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("layer: %w", err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			return fmt.Errorf("layer: %s: %w", hdr.Name, err)
		}
		name := strings.TrimSuffix(strings.TrimPrefix(hdr.Name, "./"), "/")
		fs[name] = file{hdr: hdr, data: data}
	}
}
