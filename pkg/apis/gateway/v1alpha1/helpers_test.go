package v1alpha1

import (
	"os"
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
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

// podTemplate decodes a Gateway's raw pod template strictly, as a core/v1 PodTemplateSpec, so
// that the tests still check every field of what the controller will read.
func podTemplate(t *testing.T, s GatewaySpec) corev1.PodTemplateSpec {
	t.Helper()
	var tmpl corev1.PodTemplateSpec
	decodeRaw(t, "spec.template", s.Template, &tmpl)
	return tmpl
}

// service decodes a Gateway's raw Service strictly, or is nil when the Gateway has none.
func service(t *testing.T, s GatewaySpec) *corev1.Service {
	t.Helper()
	if s.Service == nil {
		return nil
	}
	var svc corev1.Service
	decodeRaw(t, "spec.service", s.Service, &svc)
	return &svc
}

func decodeRaw(t *testing.T, field string, raw *runtime.RawExtension, into any) {
	t.Helper()
	if raw == nil {
		t.Fatalf("%s: none", field)
	}
	if err := yaml.UnmarshalStrict(raw.Raw, into); err != nil {
		t.Fatalf("%s: %v", field, err)
	}
}
