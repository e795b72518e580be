// Package publishtest has the helpers the tests of publish and of //deploy:push share: small
// image tarballs shaped like tools/image's, an in-process registry, and the pushed-image check.
package publishtest

import (
	"archive/tar"
	"bytes"
	"io"
	"log"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// TinyImage writes an image shaped like tools/image's (OCI media types, one layer holding
// /bin/<name>) to a tarball and returns the tarball and the image's digest as built.
func TinyImage(t *testing.T, imageName string) (string, v1.Hash) {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	content := []byte("binary of " + imageName)
	if err := tw.WriteHeader(&tar.Header{Name: "bin/" + imageName, Mode: 0o755, Size: int64(len(content)), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write(content); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(buf.Bytes())), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		t.Fatal(err)
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.Append(img, mutate.Addendum{Layer: layer, MediaType: types.OCILayer,
		History: v1.History{CreatedBy: "test: /bin/" + imageName}})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", "amd64"
	cfg.Config.Entrypoint = []string{"/bin/" + imageName}
	if img, err = mutate.ConfigFile(img, cfg); err != nil {
		t.Fatal(err)
	}
	digest, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), imageName+".tar")
	tag, err := name.NewTag("eventgate/" + imageName + ":latest")
	if err != nil {
		t.Fatal(err)
	}
	if err := tarball.WriteToFile(path, tag, img); err != nil {
		t.Fatal(err)
	}
	return path, digest
}

// StartRegistry serves an in-memory registry on a random loopback port and returns its host:port.
func StartRegistry(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// CheckPushed pulls the printed reference by digest and by tag: both must be the image built.
func CheckPushed(t *testing.T, line string, want v1.Hash) {
	t.Helper()
	byDigest, err := name.NewDigest(line)
	if err != nil {
		t.Fatalf("printed %q: not a reference with a digest: %v", line, err)
	}
	img, err := remote.Image(byDigest)
	if err != nil {
		t.Fatalf("pull %s: %v", byDigest, err)
	}
	if got, err := img.Digest(); err != nil || got != want {
		t.Errorf("pulled %s: digest %v (%v), want %s", byDigest, got, err, want)
	}
	if mt, err := img.MediaType(); err != nil || mt != types.OCIManifestSchema1 {
		t.Errorf("pulled %s: media type %s (%v), want %s", byDigest, mt, err, types.OCIManifestSchema1)
	}
	tagged, err := name.NewTag(strings.SplitN(line, "@", 2)[0])
	if err != nil {
		t.Fatal(err)
	}
	desc, err := remote.Head(tagged)
	if err != nil {
		t.Fatalf("head %s: %v", tagged, err)
	}
	if desc.Digest != want {
		t.Errorf("tag %s points at %s, want %s", tagged, desc.Digest, want)
	}
}
