package testenv

import (
	"os"
	"path/filepath"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/eventgate/eventgate/pkg/apis/gateway/v1alpha1"
	"github.com/eventgate/eventgate/pkg/config"
)

// Examples reads a gateway type's shipped examples from dir (deploy/examples/<type>): the
// Gateway manifest (gateway.yaml) and its ConfigMap of event sources (event-source.yaml).
// It fails the test unless the Gateway decodes strictly, is valid, is of gatewayType and
// names that ConfigMap; it returns the event sources, for the test to parse each one. So
// the examples users copy cannot rot.
func Examples(t testing.TB, dir, gatewayType string) map[string]string {
	t.Helper()
	read := func(name string) []byte {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	var gw v1alpha1.Gateway
	if err := yaml.UnmarshalStrict(read("gateway.yaml"), &gw); err != nil {
		t.Fatalf("%s/gateway.yaml: %v", dir, err)
	}
	gw.Default()
	if err := gw.Validate(); err != nil {
		t.Fatalf("%s/gateway.yaml: %v", dir, err)
	}
	if gw.Spec.Type != gatewayType {
		t.Errorf("%s/gateway.yaml: spec.type = %q, want %q", dir, gw.Spec.Type, gatewayType)
	}
	manifest := read("event-source.yaml")
	sources, err := config.ConfigMapData(manifest)
	if err != nil {
		t.Fatalf("%s/event-source.yaml: %v", dir, err)
	}
	var cm struct {
		Metadata struct {
			Name string `json:"name"`
		} `json:"metadata"`
	}
	if err := yaml.Unmarshal(manifest, &cm); err != nil {
		t.Fatalf("%s/event-source.yaml: %v", dir, err)
	}
	if _, name, err := gw.Spec.EventSourceRef(""); err != nil || name != cm.Metadata.Name {
		t.Errorf("%s/gateway.yaml: spec.eventSource = %q, want the example ConfigMap %q (%v)", dir, gw.Spec.EventSource, cm.Metadata.Name, err)
	}
	return sources
}
