package main

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"errors"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// staticBinary returns a real static linux/amd64 executable to put in images. With the go
// command at hand it builds a tiny one; under Bazel (no go command in the sandbox) it uses the
// test binary itself, which is static when the go_test has pure = "on".
func staticBinary(t *testing.T) string {
	t.Helper()
	if goCmd, err := exec.LookPath("go"); err == nil && os.Getenv("TEST_SRCDIR") == "" {
		dir := t.TempDir()
		src := filepath.Join(dir, "main.go")
		if err := os.WriteFile(src, []byte("package main\n\nfunc main() { println(\"calendar\") }\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		bin := filepath.Join(dir, "calendar")
		cmd := exec.Command(goCmd, "build", "-trimpath", "-o", bin, src)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64", "GOFLAGS=")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build: %v\n%s", err, out)
		}
		return bin
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if !isStatic(t, exe) {
		t.Fatalf("%s is dynamically linked and there is no go command to build a static binary: "+
			"set pure = \"on\" on this go_test", exe)
	}
	return exe
}

func isStatic(t *testing.T, path string) bool {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return false
		}
	}
	return true
}

func sha256File(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// startRegistry serves an in-memory registry on a random loopback port and returns its host:port.
func startRegistry(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// runCLI runs the command as main would and returns the digest it printed.
func runCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var stdout bytes.Buffer
	err := run(context.Background(), args, &stdout, t.Output())
	return strings.TrimSpace(stdout.String()), err
}

func mustRunCLI(t *testing.T, args ...string) string {
	t.Helper()
	digest, err := runCLI(t, args...)
	if err != nil {
		t.Fatalf("image %s: %v", strings.Join(args, " "), err)
	}
	if !strings.HasPrefix(digest, "sha256:") {
		t.Fatalf("stdout = %q, want a sha256 digest", digest)
	}
	return digest
}

// layerFile is one file of an image's single layer, as the container runtime would unpack it.
type layerFile struct {
	hdr    *tar.Header
	sha256 string
	data   []byte
}

func layerFiles(t *testing.T, img v1.Image) map[string]layerFile {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != 1 {
		t.Fatalf("image has %d layers, want 1", len(layers))
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	files := map[string]layerFile{}
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(data)
		files[hdr.Name] = layerFile{hdr: hdr, sha256: hex.EncodeToString(sum[:]), data: data}
	}
}
