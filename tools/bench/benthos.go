package main

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Benthos is the third baseline: a general stream processor doing the webhook path's
// job, http_server -> http_client, which like the gateway answers a post only once the sink
// took it. It is built once from the Go module proxy by the module in tools/bench/benthos (a
// module of its own, so that eventgate's module never requires Benthos) and kept in the
// user's cache folder, keyed by that module's files.
const benthosModule = "tools/bench/benthos"

// benthosConfig is the pipeline, filled with the listen address, the sensor's URL and the
// deliveries in flight. The headers make each post a binary-mode CloudEvent, as the relay's
// are.
const benthosConfig = `http:
  enabled: false
input:
  http_server:
    address: %s
    path: /
    allowed_verbs: [POST]
output:
  http_client:
    url: %s
    verb: POST
    headers:
      Content-Type: application/json
      Ce-Specversion: "1.0"
      Ce-Id: ${! uuid_v4() }
      Ce-Source: benthos
      Ce-Type: benthos
    max_in_flight: %d
logger:
  level: WARN
metrics:
  none: {}
`

// benthosInFlight is Benthos's best max_in_flight here. Its http_client keeps net/http's
// default of 2 idle connections to a host, so deliveries beyond a few at once dial and close
// a connection each. Measured with 64 posters, events/s against the relay's: 0.45x at 2,
// 0.69x at 8, 0.74x at 16, 0.56x at 32, 0.48x at 64.
const benthosInFlight = 16

// buildBenthos returns the cached Benthos binary, building it first if this version of the
// module has none yet (about half a minute on 2 cores, given the module cache).
func buildBenthos(root string) (string, error) {
	mod := filepath.Join(root, benthosModule)
	h := sha256.New()
	var goMod []byte
	for _, f := range []string{"go.mod", "go.sum", "main.go"} {
		b, err := os.ReadFile(filepath.Join(mod, f))
		if err != nil {
			return "", err
		}
		h.Write(b)
		if f == "go.mod" {
			goMod = b
		}
	}
	version, err := benthosVersion(goMod)
	if err != nil {
		return "", fmt.Errorf("%s: %w", filepath.Join(mod, "go.mod"), err)
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(cache, "eventgate", "bench", fmt.Sprintf("benthos-%s-%s", version, hex.EncodeToString(h.Sum(nil))[:12]), "benthos")
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		return "", err
	}
	fmt.Printf("building Benthos %s once, into %s ...\n", version, filepath.Dir(bin))
	start := time.Now()
	// Built beside its final name and renamed, so that an interrupted build leaves nothing
	// that a later run would take for the binary.
	tmp := bin + ".tmp"
	cmd := exec.Command("go", "build", "-trimpath", "-o", tmp, ".")
	cmd.Dir = mod
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOWORK=off", "GOFLAGS=-mod=readonly")
	if out, err := cmd.CombinedOutput(); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("go build in %s: %w\n%s", mod, err, out)
	}
	if err := os.Rename(tmp, bin); err != nil {
		return "", err
	}
	fmt.Printf("built Benthos in %s\n", time.Since(start).Round(time.Second))
	return bin, nil
}

// benthosVersion is the Benthos version that the module's go.mod (its content) requires.
func benthosVersion(goMod []byte) (string, error) {
	for _, line := range strings.Split(string(goMod), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && strings.HasSuffix(f[len(f)-2], "redpanda-data/benthos/v4") {
			return f[len(f)-1], nil
		}
	}
	return "", errors.New("requires no github.com/redpanda-data/benthos/v4")
}

// startBenthos runs bin on addr, delivering to sinkURL.
func startBenthos(dir, bin, addr, sinkURL string, inFlight int) (*proc, error) {
	config := filepath.Join(dir, "benthos.yaml")
	if err := os.WriteFile(config, []byte(fmt.Sprintf(benthosConfig, addr, sinkURL, inFlight)), 0o644); err != nil {
		return nil, err
	}
	return start("benthos", bin, []string{"run", config}, nil, dir, nil)
}
