// Package helmenv runs the tools that check the Helm chart (deploy/helm/eventgate) in tests:
// helm, kubeconform and the JSON schemas kubeconform validates against, all from
// tools/testservers/build.sh; and renders the chart into objects, for the chart's own tests and
// for tests that need what the chart installs (the controller's RBAC and ServiceAccounts).
//
// EVENTGATE_HELM, EVENTGATE_KUBECONFORM and EVENTGATE_KUBE_SCHEMAS win over the script's cache
// folder. Without the tools a test skips with a loud message, and fails when
// EVENTGATE_REQUIRE_TEST_SERVERS=1, as the README's test command sets it.
package helmenv

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/yaml"

	"github.com/eventgate/eventgate/pkg/testenv/kubeenv"
)

// Release is the release name Template and Render give helm: the objects are named
// eventgate-controller, eventgate-gateway, ...
const Release = "eventgate"

// ChartPath is the chart's folder from the workspace root. Bazel tests that use it need
// data = ["//deploy/helm/eventgate:chart"].
const ChartPath = "deploy/helm/eventgate"

// Helm is the path of the helm binary.
func Helm(t testing.TB) string {
	t.Helper()
	return tool(t, "helm", "EVENTGATE_HELM", "helm-v*/helm", kubeenv.Executable)
}

// Kubeconform is the path of the kubeconform binary.
func Kubeconform(t testing.TB) string {
	t.Helper()
	return tool(t, "kubeconform", "EVENTGATE_KUBECONFORM", "kubeconform-v*/kubeconform", kubeenv.Executable)
}

// Schemas is the folder of kubeconform's schemas, one file per kind and version as
// kubeconform's `{{ .ResourceKind }}{{ .KindSuffix }}.json` names it (tools/kubeschema).
func Schemas(t testing.TB) string {
	t.Helper()
	return tool(t, "kubeconform schemas", "EVENTGATE_KUBE_SCHEMAS", "kube-schemas-v*", func(p string) bool {
		_, err := os.Stat(filepath.Join(p, ".complete"))
		return err == nil
	})
}

// tool finds a tool of tools/testservers/build.sh's, or skips or fails the test.
func tool(t testing.TB, what, env, pattern string, ok func(string) bool) string {
	t.Helper()
	p := kubeenv.Find(env, ok, pattern)
	if p == "" {
		kubeenv.Missing(t, what, fmt.Sprintf("not found (%s, %s)", env, filepath.Join(kubeenv.CacheDir(), pattern)))
	}
	return p
}

// Chart is the chart's folder, found from the working directory upwards: the package's folder
// under go test, its runfiles folder under Bazel.
func Chart(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		p := filepath.Join(dir, ChartPath)
		if _, err := os.Stat(filepath.Join(p, "Chart.yaml")); err == nil {
			return p
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatalf("no %s/Chart.yaml above the working directory (under Bazel: data = [\"//deploy/helm/eventgate:chart\"])", ChartPath)
		}
		dir = parent
	}
}

// Run runs helm with args, in a private configuration (HELM_*_HOME in a temporary folder),
// and returns what it printed on stdout; the error, if any, carries stderr. (helm logs to
// stderr, e.g. about the symbolic links of Bazel's runfiles.)
func Run(t testing.TB, args ...string) (string, error) {
	t.Helper()
	helm := Helm(t)
	home := t.TempDir()
	cmd := exec.Command(helm, args...)
	cmd.Env = append(os.Environ(),
		"HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"),
		"HELM_DATA_HOME="+filepath.Join(home, "data"),
		"HOME="+home,
	)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("helm %s: %w\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String(), nil
}

// TemplateYAML renders the chart in chartDir as release Release (`helm template`), with more
// helm args (--namespace, --set, -f, --include-crds, ...), and returns the manifests.
func TemplateYAML(t testing.TB, chartDir string, args ...string) []byte {
	t.Helper()
	out, err := Run(t, append([]string{"template", Release, chartDir}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	return []byte(out)
}

// Template is TemplateYAML decoded into objects.
func Template(t testing.TB, chartDir string, args ...string) []*unstructured.Unstructured {
	t.Helper()
	objs, err := Decode(TemplateYAML(t, chartDir, args...))
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

// Render renders this repository's chart into namespace with the given --set values
// ("singleNamespace=true", "controller.instanceID=test") and returns the objects, CRDs
// first. A test of the controller can create the ServiceAccounts and RBAC objects among them
// and run the controller impersonating its ServiceAccount.
func Render(t testing.TB, namespace string, set ...string) []*unstructured.Unstructured {
	t.Helper()
	args := []string{"--namespace", namespace, "--include-crds"}
	for _, s := range set {
		args = append(args, "--set", s)
	}
	return Template(t, Chart(t), args...)
}

// Decode splits a YAML stream into objects, skipping empty documents.
func Decode(manifests []byte) ([]*unstructured.Unstructured, error) {
	dec := yaml.NewYAMLOrJSONDecoder(bytes.NewReader(manifests), 4096)
	var objs []*unstructured.Unstructured
	for {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			if errors.Is(err, io.EOF) {
				return objs, nil
			}
			return nil, err
		}
		if len(raw) == 0 || string(raw) == "null" {
			continue
		}
		// As the API machinery decodes them: integers as int64.
		obj := &unstructured.Unstructured{}
		if err := obj.UnmarshalJSON(raw); err != nil {
			return nil, err
		}
		objs = append(objs, obj)
	}
}

// Find returns the objects of a kind, by name.
func Find(objs []*unstructured.Unstructured, kind string) map[string]*unstructured.Unstructured {
	out := map[string]*unstructured.Unstructured{}
	for _, o := range objs {
		if o.GetKind() == kind {
			out[o.GetName()] = o
		}
	}
	return out
}

// Kinds lists the kinds of objs, sorted, once each.
func Kinds(objs []*unstructured.Unstructured) []string {
	seen := map[string]bool{}
	for _, o := range objs {
		seen[o.GetKind()] = true
	}
	kinds := make([]string, 0, len(seen))
	for k := range seen {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	return kinds
}

// Validate checks manifests with kubeconform, strictly, against Schemas (no schema is
// fetched), with more kubeconform args (-skip KIND,...); it returns kubeconform's output and
// an error when a manifest is invalid or has no schema.
func Validate(t testing.TB, manifests []byte, args ...string) (string, error) {
	t.Helper()
	location := filepath.Join(Schemas(t), "{{ .ResourceKind }}{{ .KindSuffix }}.json")
	cmd := exec.Command(Kubeconform(t), append([]string{"-strict", "-summary", "-schema-location", location}, args...)...)
	cmd.Stdin = bytes.NewReader(manifests)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("kubeconform: %w\n%s", err, out)
	}
	return string(out), nil
}
