// Package publish pushes the images tools/image builds: one image to one reference (the tool's
// --push) or a set of image tarballs under one registry prefix (//deploy:push).
package publish

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// ParseReference parses a push target. Registries on loopback (localhost, 127.0.0.1, ::1) and
// private networks get plain HTTP anyway; insecure allows it for any other host too.
func ParseReference(ref string, insecure bool) (name.Reference, error) {
	return name.ParseReference(ref, refOptions(insecure)...)
}

func refOptions(insecure bool) []name.Option {
	if insecure {
		return []name.Option{name.Insecure}
	}
	return nil
}

// Push uses the docker config's credentials (~/.docker/config.json, credential helpers) like
// docker and crane do; a loopback test registry needs none and gets anonymous access.
func Push(ctx context.Context, ref name.Reference, img v1.Image) error {
	err := remote.Write(ref, img,
		remote.WithContext(ctx),
		remote.WithAuthFromKeychain(authn.DefaultKeychain))
	if err != nil {
		return fmt.Errorf("push %s: %w", ref, err)
	}
	return nil
}

// LoadTarball reads an image tarball written by tools/image and gives back the image as the
// tool built it, OCI media types and all. A docker tarball keeps the config and the layer blobs
// but no manifest (readers make up a Docker-typed one), so pushing it as loaded would give
// another digest than the one `bazel run :image` prints; rebuilt this way the manifest, and so
// the digest, is the same.
func LoadTarball(path string) (v1.Image, error) {
	// A nil tag loads the tarball's only image, and fails if there are several.
	loaded, err := tarball.ImageFromPath(path, nil)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	cfg, err := loaded.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("load %s: config: %w", path, err)
	}
	layers, err := loaded.Layers()
	if err != nil {
		return nil, fmt.Errorf("load %s: layers: %w", path, err)
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	adds := make([]mutate.Addendum, len(layers))
	for i, l := range layers {
		adds[i] = mutate.Addendum{Layer: l, MediaType: types.OCILayer}
	}
	if img, err = mutate.Append(img, adds...); err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	// The config as stored (history, diff ids and all) replaces the one Append made up.
	if img, err = mutate.ConfigFile(img, cfg); err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	return img, nil
}

// Image is one image to push: its repository name under the registry prefix and its tarball.
type Image struct {
	Name    string // "webhook": pushed as <registry>/webhook
	Tarball string
}

// Target is where PushAll puts images: HOST[:PORT]/PREFIX and a tag.
type Target struct {
	registry name.Registry
	prefix   string // "" or "eventgate" or "team/eventgate"
	tag      string
	insecure bool
}

// ParseTarget checks --registry and --tag before anything is pushed. The host part must look
// like a registry host (a dot, a port or localhost), as docker requires: otherwise
// "myregistry/eventgate" would silently mean Docker Hub's myregistry/eventgate.
func ParseTarget(registry, tag string, insecure bool) (Target, error) {
	const want = "want HOST[:PORT]/PREFIX, e.g. 127.0.0.1:5000/eventgate"
	if registry == "" {
		return Target{}, fmt.Errorf("--registry is required (%s)", want)
	}
	if strings.Contains(registry, "://") {
		return Target{}, fmt.Errorf("--registry %q: no scheme: %s (loopback registries use plain HTTP; --insecure allows it elsewhere)", registry, want)
	}
	host, prefix, _ := strings.Cut(strings.TrimSuffix(registry, "/"), "/")
	if host == "" || !(strings.ContainsAny(host, ".:") || host == "localhost") {
		return Target{}, fmt.Errorf("--registry %q: %q is not a registry host: %s", registry, host, want)
	}
	if prefix != "" && slices.Contains(strings.Split(prefix, "/"), "") {
		return Target{}, fmt.Errorf("--registry %q: empty path element in %q: %s", registry, prefix, want)
	}
	reg, err := name.NewRegistry(host, append(refOptions(insecure), name.StrictValidation)...)
	if err != nil {
		return Target{}, fmt.Errorf("--registry %q: %w", registry, err)
	}
	if tag == "" {
		return Target{}, errors.New("--tag must not be empty")
	}
	t := Target{registry: reg, prefix: prefix, tag: tag, insecure: insecure}
	// A trial name checks the prefix and the tag (lower case, allowed characters).
	if _, err := t.Ref("x"); err != nil {
		return Target{}, fmt.Errorf("--registry %q --tag %q: %w", registry, tag, err)
	}
	return t, nil
}

// Ref is the tag an image called imageName gets: HOST[:PORT]/PREFIX/imageName:TAG.
func (t Target) Ref(imageName string) (name.Tag, error) {
	repo := imageName
	if t.prefix != "" {
		repo = t.prefix + "/" + imageName
	}
	return name.NewTag(t.registry.Name()+"/"+repo+":"+t.tag, append(refOptions(t.insecure), name.StrictValidation)...)
}

// Registry is HOST[:PORT], for messages.
func (t Target) Registry() string { return t.registry.Name() }

// PushAll pushes the images one after the other and writes one line per image pushed to out,
// REF:TAG@DIGEST, pullable by digest. It stops at the first failure: when the registry is
// down, the next image would only fail the same way.
func PushAll(ctx context.Context, t Target, images []Image, out io.Writer) error {
	refs := make([]name.Tag, len(images))
	for i, im := range images {
		ref, err := t.Ref(im.Name)
		if err != nil {
			return fmt.Errorf("image %q: %w", im.Name, err)
		}
		refs[i] = ref
	}
	for i, im := range images {
		img, err := LoadTarball(im.Tarball)
		if err != nil {
			return fmt.Errorf("image %s: %w", im.Name, err)
		}
		digest, err := img.Digest()
		if err != nil {
			return fmt.Errorf("image %s: digest: %w", im.Name, err)
		}
		if err := Push(ctx, refs[i], img); err != nil {
			var opErr *net.OpError
			if errors.As(err, &opErr) && opErr.Op == "dial" {
				return fmt.Errorf("image %s: cannot reach registry %s: %w", im.Name, t.Registry(), err)
			}
			return fmt.Errorf("image %s: registry %s: %w", im.Name, t.Registry(), err)
		}
		if _, err := fmt.Fprintf(out, "%s@%s\n", refs[i], digest); err != nil {
			return err
		}
	}
	return nil
}

// ParseImage parses NAME=TARBALL, the --image flag of //deploy:push.
func ParseImage(s string) (Image, error) {
	n, tarball, ok := strings.Cut(s, "=")
	if !ok || n == "" || tarball == "" {
		return Image{}, fmt.Errorf("--image %q: want NAME=TARBALL", s)
	}
	return Image{Name: n, Tarball: tarball}, nil
}
