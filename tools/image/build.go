package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// nonRootUser is distroless' "nonroot" user: a uid no host account is likely to have, so a
// container escape does not land on a real user, and Kubernetes' runAsNonRoot accepts it.
const (
	nonRootUID  = 65532
	nonRootUser = "65532:65532"
)

// imageSpec is everything that goes into the image. Nothing else (host time, host user, file
// mtimes) may influence it, or the digest stops being reproducible.
type imageSpec struct {
	binary  string   // path on the host
	name    string   // file name under /bin in the image
	aliases []string // more names for it under /bin (symlinks)
	arch    string
	env     []string
	ports   []string // "9330/tcp"
	created time.Time
}

// createdTime honours SOURCE_DATE_EPOCH (reproducible-builds.org) and otherwise uses the epoch,
// so that two builds of the same binary give the same digest.
func createdTime() (time.Time, error) {
	s, ok := os.LookupEnv("SOURCE_DATE_EPOCH")
	if !ok || s == "" {
		return time.Unix(0, 0).UTC(), nil
	}
	sec, err := strconv.ParseInt(s, 10, 64)
	if err != nil || sec < 0 {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH %q: want non-negative seconds since the epoch", s)
	}
	return time.Unix(sec, 0).UTC(), nil
}

func buildImage(spec imageSpec) (v1.Image, error) {
	bin, err := readStaticBinary(spec.binary, spec.arch)
	if err != nil {
		return nil, err
	}
	caCerts, err := caBundle()
	if err != nil {
		return nil, err
	}
	layer, err := newLayer(spec, bin, caCerts)
	if err != nil {
		return nil, err
	}

	// OCI media types throughout: registries and `docker load` both accept them, and the
	// layout output is then a plain OCI image.
	base := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	base = mutate.ConfigMediaType(base, types.OCIConfigJSON)
	img, err := mutate.Append(base, mutate.Addendum{
		Layer: layer,
		History: v1.History{
			Created:   v1.Time{Time: spec.created},
			CreatedBy: "eventgate tools/image: /bin/" + spec.name + aliasNote(spec.aliases),
		},
		MediaType: types.OCILayer,
	})
	if err != nil {
		return nil, fmt.Errorf("append layer: %w", err)
	}

	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	cfg = cfg.DeepCopy()
	cfg.OS = "linux"
	cfg.Architecture = spec.arch
	cfg.Created = v1.Time{Time: spec.created}
	cfg.Config.Entrypoint = []string{"/bin/" + spec.name}
	cfg.Config.Cmd = nil
	cfg.Config.User = nonRootUser
	cfg.Config.WorkingDir = "/"
	// PATH first so that a user-given PATH wins (the last duplicate wins in Docker and containerd).
	cfg.Config.Env = append([]string{"PATH=/bin", "HOME=/home/nonroot"}, spec.env...)
	if len(spec.ports) > 0 {
		cfg.Config.ExposedPorts = map[string]struct{}{}
		for _, p := range spec.ports {
			cfg.Config.ExposedPorts[p] = struct{}{}
		}
	}
	img, err = mutate.ConfigFile(img, cfg)
	if err != nil {
		return nil, fmt.Errorf("set config: %w", err)
	}
	return img, nil
}

// aliasNote is the history's mention of the aliases, empty without any.
func aliasNote(aliases []string) string {
	if len(aliases) == 0 {
		return ""
	}
	return " (also /bin/" + strings.Join(aliases, ", /bin/") + ")"
}
