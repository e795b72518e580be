package main

import (
	"archive/tar"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

var binary = []byte("\x7fELF pretend binary")

// fixture describes an image to write; the zero value changed by one field gives each bad case.
type fixture struct {
	path, user, arch string
	mode             int64
	uid              int
	content          []byte
	entrypoint       []string
	extra            []extraFile // more files after the binary
}

type extraFile struct {
	hdr  tar.Header
	data []byte
}

func good() fixture {
	return fixture{path: "bin/calendar", user: "65532:65532", arch: "amd64", mode: 0o755,
		content: binary, entrypoint: []string{"/bin/calendar"}}
}

func writeFixture(t *testing.T, f fixture) string {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: f.path, Mode: f.mode, Uid: f.uid, Size: int64(len(f.content)), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write(f.content); err != nil {
		t.Fatal(err)
	}
	for _, e := range f.extra {
		hdr := e.hdr
		hdr.Size = int64(len(e.data))
		if err := tw.WriteHeader(&hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(e.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(buf.Bytes())), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.ConfigFile() // keeps the layer's diff id
	if err != nil {
		t.Fatal(err)
	}
	cfg.OS, cfg.Architecture = "linux", f.arch
	cfg.Config = v1.Config{Entrypoint: f.entrypoint, User: f.user}
	if img, err = mutate.ConfigFile(img, cfg); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "image.tar")
	tag, err := name.NewTag("eventgate/calendar:latest")
	if err != nil {
		t.Fatal(err)
	}
	if err := tarball.WriteToFile(out, tag, img); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestCheck(t *testing.T) {
	binPath := filepath.Join(t.TempDir(), "calendar")
	if err := os.WriteFile(binPath, binary, 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		change func(*fixture)
		want   string // "" for a passing image, else part of the error
	}{
		{"good image", func(*fixture) {}, ""},
		{"root user", func(f *fixture) { f.user = "0:0" }, `user is "0:0"`},
		{"no user means root", func(f *fixture) { f.user = "" }, `user is ""`},
		{"named root", func(f *fixture) { f.user = "root" }, `user is "root"`},
		{"wrong entrypoint", func(f *fixture) { f.entrypoint = []string{"/bin/sh"} }, "entrypoint is"},
		{"binary missing", func(f *fixture) { f.path = "usr/bin/calendar" }, "no file /bin/calendar"},
		{"not executable", func(f *fixture) { f.mode = 0o644 }, "has mode -rw-r--r--"},
		{"owned by a user", func(f *fixture) { f.uid = 65532 }, "owned by 65532:0"},
		{"other bytes", func(f *fixture) { f.content = []byte("something else") }, "differs from the expected binary"},
		{"wrong arch", func(f *fixture) { f.arch = "arm64" }, "platform is linux/arm64"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := good()
			tc.change(&f)
			var stdout bytes.Buffer
			err := run([]string{"--tarball", writeFixture(t, f), "--entrypoint", "/bin/calendar", "--binary", binPath},
				&stdout, t.Output())
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("error %v, want none", err)
			case tc.want == "" && !strings.Contains(stdout.String(), ": ok"):
				t.Errorf("stdout = %q, want an ok line", stdout.String())
			case tc.want != "" && err == nil:
				t.Fatalf("no error, want one containing %q", tc.want)
			case tc.want != "" && !strings.Contains(err.Error(), tc.want):
				t.Errorf("error = %q, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestUsageErrors(t *testing.T) {
	notTar := filepath.Join(t.TempDir(), "image.tar")
	if err := os.WriteFile(notTar, []byte("not a tarball"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no flags", nil, "usage:"},
		{"no entrypoint", []string{"--tarball", notTar}, "usage:"},
		{"stray argument", []string{"--tarball", notTar, "--entrypoint", "/bin/x", "more"}, "usage:"},
		{"not a tarball", []string{"--tarball", notTar, "--entrypoint", "/bin/x"}, "load " + notTar},
		{"missing binary", []string{"--tarball", notTar, "--entrypoint", "/bin/x", "--binary", notTar + ".nope"}, "binary:"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := run(tc.args, io.Discard, t.Output())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestCheckThroughRegistry(t *testing.T) {
	binPath := filepath.Join(t.TempDir(), "calendar")
	if err := os.WriteFile(binPath, binary, 0o755); err != nil {
		t.Fatal(err)
	}
	tarPath := writeFixture(t, good())
	var stdout bytes.Buffer
	if err := run([]string{"--tarball", tarPath, "--entrypoint", "/bin/calendar", "--binary", binPath,
		"--through-registry", "eventgate/calendar"}, &stdout, t.Output()); err != nil {
		t.Fatalf("good image through the registry: %v", err)
	}
	// The pulled image is checked as strictly as the tarball: a different binary fails there too.
	img, err := tarball.ImageFromPath(tarPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = checkImage("pulled", img, expectation{entrypoint: "/bin/calendar", arch: "amd64", content: []byte("another binary")})
	if err == nil || !strings.Contains(err.Error(), "differs from the expected binary") {
		t.Errorf("checkImage with other bytes: %v", err)
	}
}

// testCAPEM is n copies of one self-signed certificate: the checker counts and parses, it does
// not judge who the roots are.
func testCAPEM(t *testing.T, n int) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test root"},
		NotBefore: time.Unix(0, 0), NotAfter: time.Unix(1<<32, 0), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	var out []byte
	for range n {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	return out
}

func TestAliasesAndCACerts(t *testing.T) {
	binPath := filepath.Join(t.TempDir(), "calendar")
	if err := os.WriteFile(binPath, binary, 0o755); err != nil {
		t.Fatal(err)
	}
	ca := testCAPEM(t, 3)
	symlink := func(name, target string) extraFile {
		return extraFile{hdr: tar.Header{Name: name, Typeflag: tar.TypeSymlink, Linkname: target, Mode: 0o777}}
	}
	regular := func(name string, mode int64, data []byte) extraFile {
		return extraFile{hdr: tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: mode}, data: data}
	}
	caFile := regular("etc/ssl/certs/ca-certificates.crt", 0o644, ca)
	tests := []struct {
		name  string
		extra []extraFile
		want  string // "" for a passing image, else part of the error
	}{
		{"relative symlink", []extraFile{symlink("bin/calendar-gateway", "calendar"), caFile}, ""},
		{"absolute symlink", []extraFile{symlink("bin/calendar-gateway", "/bin/calendar"), caFile}, ""},
		{"hard link", []extraFile{{hdr: tar.Header{Name: "bin/calendar-gateway", Typeflag: tar.TypeLink, Linkname: "bin/calendar"}}, caFile}, ""},
		{"a copy", []extraFile{regular("bin/calendar-gateway", 0o755, binary), caFile}, ""},
		{"symlink to a symlink", []extraFile{symlink("bin/cal", "calendar"), symlink("bin/calendar-gateway", "cal"), caFile}, ""},
		{"alias missing", []extraFile{caFile}, "alias /bin/calendar-gateway: no file /bin/calendar-gateway"},
		{"dangling symlink", []extraFile{symlink("bin/calendar-gateway", "calendr"), caFile}, "alias /bin/calendar-gateway: no file /bin/calendr"},
		{"symlink loop", []extraFile{symlink("bin/calendar-gateway", "calendar-gateway"), caFile}, "too many links"},
		{"other bytes", []extraFile{regular("bin/calendar-gateway", 0o755, []byte("other")), caFile}, "alias /bin/calendar-gateway differs from /bin/calendar"},
		{"copy not executable", []extraFile{regular("bin/calendar-gateway", 0o644, binary), caFile}, "not executable"},
		{"no CA bundle", []extraFile{symlink("bin/calendar-gateway", "calendar")}, "CA bundle: no file /etc/ssl/certs/ca-certificates.crt"},
		{"CA bundle not PEM", []extraFile{symlink("bin/calendar-gateway", "calendar"),
			regular("etc/ssl/certs/ca-certificates.crt", 0o644, []byte("not pem"))}, "not PEM"},
		{"too few roots", []extraFile{symlink("bin/calendar-gateway", "calendar"),
			regular("etc/ssl/certs/ca-certificates.crt", 0o644, testCAPEM(t, 1))}, "has 1 certificates, want at least 2"},
		{"bad certificate", []extraFile{symlink("bin/calendar-gateway", "calendar"),
			regular("etc/ssl/certs/ca-certificates.crt", 0o644, append(append([]byte{}, ca...),
				pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("junk")})...))}, "certificate 4:"},
		{"CA bundle unreadable", []extraFile{symlink("bin/calendar-gateway", "calendar"),
			regular("etc/ssl/certs/ca-certificates.crt", 0o600, ca)}, "the non-root user cannot read it"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := good()
			f.extra = tc.extra
			var stdout bytes.Buffer
			err := run([]string{"--tarball", writeFixture(t, f), "--entrypoint", "/bin/calendar", "--binary", binPath,
				"--alias", "/bin/calendar-gateway", "--ca-certs", "/etc/ssl/certs/ca-certificates.crt", "--min-ca-certs", "2"},
				&stdout, t.Output())
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("error %v, want none", err)
			case tc.want == "" && !strings.Contains(stdout.String(), "aliases /bin/calendar-gateway, CA bundle"):
				t.Errorf("stdout = %q, want an ok line naming the aliases and the CA bundle", stdout.String())
			case tc.want != "" && err == nil:
				t.Fatalf("no error, want one containing %q", tc.want)
			case tc.want != "" && !strings.Contains(err.Error(), tc.want):
				t.Errorf("error = %q, want it to contain %q", err, tc.want)
			}
		})
	}
}
