package main

import (
	"archive/tar"
	"crypto/x509"
	"encoding/pem"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/eventgate/eventgate/tools/image/publish"
)

// checkImage asserts what every image must be: a non-root entrypoint that is the given binary,
// byte for byte, at /bin/<name>, owned by root and executable.
func checkImage(t *testing.T, img v1.Image, binary, binName string) {
	t.Helper()
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.OS != "linux" || cfg.Architecture != "amd64" {
		t.Errorf("platform = %s/%s, want linux/amd64", cfg.OS, cfg.Architecture)
	}
	if want := []string{"/bin/" + binName}; !slices.Equal(cfg.Config.Entrypoint, want) {
		t.Errorf("entrypoint = %q, want %q", cfg.Config.Entrypoint, want)
	}
	uid, _, _ := strings.Cut(cfg.Config.User, ":")
	if uid == "" || uid == "0" || uid == "root" {
		t.Errorf("user = %q, want a non-root uid", cfg.Config.User)
	}
	if !cfg.Created.Time.Equal(time.Unix(0, 0)) {
		t.Errorf("created = %v, want the epoch", cfg.Created.Time)
	}

	files := layerFiles(t, img)
	f, ok := files["bin/"+binName]
	if !ok {
		t.Fatalf("layer has no bin/%s; it has %v", binName, keys(files))
	}
	if got := f.hdr.FileInfo().Mode().Perm(); got != 0o755 {
		t.Errorf("bin/%s mode = %v, want 0755", binName, got)
	}
	if f.hdr.Uid != 0 || f.hdr.Gid != 0 {
		t.Errorf("bin/%s owner = %d:%d, want 0:0", binName, f.hdr.Uid, f.hdr.Gid)
	}
	if want := sha256File(t, binary); f.sha256 != want {
		t.Errorf("bin/%s sha256 = %s, want %s (the input binary)", binName, f.sha256, want)
	}
	if !strings.Contains(string(files["etc/passwd"].data), ":"+uid+":") {
		t.Errorf("etc/passwd has no entry for uid %s:\n%s", uid, files["etc/passwd"].data)
	}
}

func keys[V any](m map[string]V) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

func TestPushAndPull(t *testing.T) {
	bin := staticBinary(t)
	ref := startRegistry(t) + "/eventgate/calendar:test"

	digest := mustRunCLI(t, "--binary", bin, "--name", "calendar", "--push", ref,
		"--env", "GATEWAY_SERVER_PORT=9330", "--port", "9330")

	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(r)
	if err != nil {
		t.Fatalf("pull %s: %v", ref, err)
	}
	got, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	if got.String() != digest {
		t.Errorf("pulled digest = %s, printed %s", got, digest)
	}
	checkImage(t, img, bin, "calendar")

	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(cfg.Config.Env, "GATEWAY_SERVER_PORT=9330") {
		t.Errorf("env = %q, want GATEWAY_SERVER_PORT=9330 in it", cfg.Config.Env)
	}
	if _, ok := cfg.Config.ExposedPorts["9330/tcp"]; !ok || len(cfg.Config.ExposedPorts) != 1 {
		t.Errorf("exposed ports = %v, want just 9330/tcp", cfg.Config.ExposedPorts)
	}

	// The same inputs again must give the very same image, pushed or not.
	if again := mustRunCLI(t, "--binary", bin, "--name", "calendar", "--push", ref,
		"--env", "GATEWAY_SERVER_PORT=9330", "--port", "9330"); again != digest {
		t.Errorf("second build digest = %s, first %s: not reproducible", again, digest)
	}
}

func TestTarball(t *testing.T) {
	bin := staticBinary(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "image.tar")

	// The layout keeps the manifest as built; the docker tarball format does not store one
	// (readers synthesise a Docker-typed manifest), so the two are compared by config and layers.
	digest := mustRunCLI(t, "--binary", bin, "--name", "calendar", "--repository", "eventgate/calendar",
		"--tag", "v1", "--tarball", out, "--oci-layout", filepath.Join(dir, "layout"))
	built, err := layout.ImageIndexFromPath(filepath.Join(dir, "layout"))
	if err != nil {
		t.Fatal(err)
	}
	want, err := built.Image(v1.Hash{Algorithm: "sha256", Hex: strings.TrimPrefix(digest, "sha256:")})
	if err != nil {
		t.Fatal(err)
	}

	tag, err := name.NewTag("eventgate/calendar:v1")
	if err != nil {
		t.Fatal(err)
	}
	// Loading by tag proves the tarball carries the name `docker load` will give it.
	img, err := tarball.ImageFromPath(out, &tag)
	if err != nil {
		t.Fatalf("load %s as %s: %v", out, tag, err)
	}
	for _, part := range []struct {
		what string
		of   func(v1.Image) (string, error)
	}{
		{"image ID (config digest)", func(i v1.Image) (string, error) { h, err := i.ConfigName(); return h.String(), err }},
		{"layer digest", func(i v1.Image) (string, error) {
			ls, err := i.Layers()
			if err != nil || len(ls) != 1 {
				return "", err
			}
			h, err := ls[0].Digest()
			return h.String(), err
		}},
	} {
		got, err1 := part.of(img)
		exp, err2 := part.of(want)
		if err1 != nil || err2 != nil || got != exp {
			t.Errorf("tarball %s = %s (%v), built %s (%v)", part.what, got, err1, exp, err2)
		}
	}
	checkImage(t, img, bin, "calendar")
}

func TestOCILayout(t *testing.T) {
	bin := staticBinary(t)
	dir := filepath.Join(t.TempDir(), "layout")

	digest := mustRunCLI(t, "--binary", bin, "--name", "calendar", "--oci-layout", dir)
	// Writing into an existing layout replaces its index rather than piling images up.
	mustRunCLI(t, "--binary", bin, "--name", "calendar", "--oci-layout", dir)

	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Manifests) != 1 || m.Manifests[0].Digest.String() != digest {
		t.Fatalf("index manifests = %+v, want just %s", m.Manifests, digest)
	}
	if got := m.Manifests[0].Annotations["org.opencontainers.image.ref.name"]; got != "eventgate/calendar:latest" {
		t.Errorf("ref.name annotation = %q, want eventgate/calendar:latest", got)
	}
	img, err := idx.Image(m.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	checkImage(t, img, bin, "calendar")
}

func TestReproducible(t *testing.T) {
	bin := staticBinary(t)
	dir := t.TempDir()
	build := func(out string) string {
		return mustRunCLI(t, "--binary", bin, "--tarball", filepath.Join(dir, out))
	}

	first, second := build("a.tar"), build("b.tar")
	if first != second {
		t.Errorf("digests %s and %s: not reproducible", first, second)
	}
	if a, b := sha256File(t, filepath.Join(dir, "a.tar")), sha256File(t, filepath.Join(dir, "b.tar")); a != b {
		t.Errorf("tarballs differ: sha256 %s and %s", a, b)
	}

	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	dated := build("c.tar")
	if dated == first {
		t.Errorf("SOURCE_DATE_EPOCH did not change the digest %s", first)
	}
	if again := build("d.tar"); again != dated {
		t.Errorf("with SOURCE_DATE_EPOCH digests %s and %s: not reproducible", dated, again)
	}
	img, err := tarball.ImageFromPath(filepath.Join(dir, "c.tar"), nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Unix(1700000000, 0); !cfg.Created.Time.Equal(want) {
		t.Errorf("created = %v, want %v", cfg.Created.Time, want)
	}
}

func TestAliasesAndCACerts(t *testing.T) {
	bin := staticBinary(t)
	out := filepath.Join(t.TempDir(), "image.tar")
	digest := mustRunCLI(t, "--binary", bin, "--name", "webhook", "--alias", "webhook-gateway",
		"--alias", "hook", "--tarball", out)

	img, err := publish.LoadTarball(out)
	if err != nil {
		t.Fatal(err)
	}
	// The tarball, loaded for pushing, is the image the tool built: same manifest, same digest.
	if got, err := img.Digest(); err != nil || got.String() != digest {
		t.Errorf("LoadTarball digest = %v (%v), the tool printed %s", got, err, digest)
	}
	checkImage(t, img, bin, "webhook")

	files := layerFiles(t, img)
	for _, alias := range []string{"webhook-gateway", "hook"} {
		f, ok := files["bin/"+alias]
		switch {
		case !ok:
			t.Errorf("no bin/%s in the layer", alias)
		case f.hdr.Typeflag != tar.TypeSymlink || f.hdr.Linkname != "webhook":
			t.Errorf("bin/%s: type %q -> %q, want a symlink to webhook (beside it)", alias, f.hdr.Typeflag, f.hdr.Linkname)
		case f.hdr.Uid != 0 || f.hdr.Gid != 0:
			t.Errorf("bin/%s owner = %d:%d, want 0:0", alias, f.hdr.Uid, f.hdr.Gid)
		}
	}

	ca, ok := files["etc/ssl/certs/ca-certificates.crt"]
	if !ok {
		t.Fatalf("no etc/ssl/certs/ca-certificates.crt; the layer has %v", keys(files))
	}
	if perm := ca.hdr.FileInfo().Mode().Perm(); perm != 0o644 {
		t.Errorf("ca-certificates.crt mode = %v, want 0644", perm)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca.data) {
		t.Fatal("ca-certificates.crt holds no PEM certificate")
	}
	n := 0
	for rest := ca.data; ; n++ {
		var block *pem.Block
		if block, rest = pem.Decode(rest); block == nil {
			break
		}
		if _, err := x509.ParseCertificate(block.Bytes); err != nil {
			t.Errorf("certificate %d: %v", n, err)
		}
	}
	if n < minCACerts {
		t.Errorf("ca-certificates.crt has %d certificates, want at least %d", n, minCACerts)
	}
}
