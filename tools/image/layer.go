package main

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"fmt"
	"io"
	"os"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// elfMachine maps --arch to the ELF machine a binary for it must have, so an arm64 binary
// cannot end up in an amd64 image (it would fail only at container start, with "exec format error").
var elfMachine = map[string]elf.Machine{
	"amd64": elf.EM_X86_64,
	"arm64": elf.EM_AARCH64,
}

// readStaticBinary reads the binary and refuses what cannot run on an empty base image.
func readStaticBinary(path, arch string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("binary: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("binary %s: not a regular file", path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("binary: %w", err)
	}
	f, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("binary %s: not an ELF executable: %w", path, err)
	}
	defer f.Close()
	if f.Machine != elfMachine[arch] {
		return nil, fmt.Errorf("binary %s: built for %s, but the image is for %s", path, f.Machine, arch)
	}
	for _, p := range f.Progs {
		// An interpreter (ld-linux.so) means dynamic linking: the empty base has no libc.
		if p.Type == elf.PT_INTERP {
			return nil, fmt.Errorf("binary %s: dynamically linked, but the image has no libc: build it static "+
				"(CGO_ENABLED=0, or pure = \"on\" on its go_binary)", path)
		}
	}
	return data, nil
}

// passwd and group name the non-root user, so tools that look the uid up (and Go's os/user)
// find a name and a home instead of failing.
const (
	passwd = "root:x:0:0:root:/root:/sbin/nologin\n" +
		"nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"
	group = "root:x:0:\nnonroot:x:65532:\n"
)

type entry struct {
	name    string
	mode    int64
	uid     int
	content []byte // nil for a directory or a symlink
	link    string // symlink target, "" for anything else
}

// layerTar lays out the whole file system of the image. Every header field is fixed (owner,
// mode, mtime), so the same binary always gives the same bytes and thus the same digest.
func layerTar(spec imageSpec, bin, caCerts []byte) ([]byte, error) {
	entries := []entry{
		{name: "bin/", mode: 0o755},
		{name: "bin/" + spec.name, mode: 0o755, content: bin},
	}
	// Other names for the binary (v0.10's /bin/<type>-gateway) are relative symlinks beside it:
	// exec follows them, and the binary is stored once.
	for _, alias := range spec.aliases {
		entries = append(entries, entry{name: "bin/" + alias, mode: 0o777, link: spec.name})
	}
	entries = append(entries, []entry{
		{name: "etc/", mode: 0o755},
		{name: "etc/group", mode: 0o644, content: []byte(group)},
		{name: "etc/passwd", mode: 0o644, content: []byte(passwd)},
		{name: "etc/ssl/", mode: 0o755},
		{name: "etc/ssl/certs/", mode: 0o755},
		{name: caCertsPath, mode: 0o644, content: caCerts},
		{name: "home/", mode: 0o755},
		{name: "home/nonroot/", mode: 0o700, uid: nonRootUID},
		// Go's os.TempDir and many libraries expect a writable /tmp.
		{name: "tmp/", mode: 0o1777},
	}...)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := &tar.Header{
			Name:    e.name,
			Mode:    e.mode,
			Uid:     e.uid,
			Gid:     e.uid,
			ModTime: spec.created,
			Format:  tar.FormatPAX,
		}
		switch {
		case e.link != "":
			hdr.Typeflag = tar.TypeSymlink
			hdr.Linkname = e.link
		case e.content == nil:
			hdr.Typeflag = tar.TypeDir
		default:
			hdr.Typeflag = tar.TypeReg
			hdr.Size = int64(len(e.content))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("layer: %s: %w", e.name, err)
		}
		if _, err := tw.Write(e.content); err != nil {
			return nil, fmt.Errorf("layer: %s: %w", e.name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("layer: %w", err)
	}
	return buf.Bytes(), nil
}

func newLayer(spec imageSpec, bin, caCerts []byte) (v1.Layer, error) {
	tb, err := layerTar(spec, bin, caCerts)
	if err != nil {
		return nil, err
	}
	// The opener is called more than once (digest, diff id, write); keeping the tar in memory
	// is fine for one binary and avoids a temp file to clean up.
	opener := func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(tb)), nil }
	l, err := tarball.LayerFromOpener(opener, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, fmt.Errorf("layer: %w", err)
	}
	return l, nil
}
