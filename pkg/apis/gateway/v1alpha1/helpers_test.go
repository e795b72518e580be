package v1alpha1

import (
	"os"
	"path/filepath"
	"testing"

	"sigs.k8s.io/yaml"
)

// repoRoot is the repository root seen from this package, where the shipped manifests the
// tests read live (Bazel: the test's data).
const repoRoot = "../../../.."

var examples = map[string]string{
	"webhook":  "deploy/examples/webhook/gateway.yaml",
	"calendar": "deploy/examples/calendar/gateway.yaml",
}

func readFile(t *testing.T, rel string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot, rel))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// example decodes a shipped example strictly, so that tests build on what users apply.
func example(t *testing.T, name string) *Gateway {
	t.Helper()
	var gw Gateway
	if err := yaml.UnmarshalStrict(readFile(t, examples[name]), &gw); err != nil {
		t.Fatalf("%s: %v", examples[name], err)
	}
	return &gw
}
