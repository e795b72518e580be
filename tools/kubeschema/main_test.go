package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// A swagger document in the shape of Kubernetes': a kind with a group-version-kind, a spec
// that refers to an int-or-string, a Quantity, a map and a recursive type.
const swagger = `{"definitions": {
  "io.example.v1.Widget": {
    "description": "A widget.",
    "type": "object",
    "required": ["spec"],
    "properties": {
      "apiVersion": {"type": "string"},
      "kind": {"type": "string"},
      "spec": {"$ref": "#/definitions/io.example.v1.WidgetSpec", "description": "The spec."}
    },
    "x-kubernetes-group-version-kind": [{"group": "widgets.example.io", "version": "v1", "kind": "Widget"}]
  },
  "io.example.v1.WidgetSpec": {
    "type": "object",
    "properties": {
      "port": {"$ref": "#/definitions/io.k8s.apimachinery.pkg.util.intstr.IntOrString"},
      "size": {"$ref": "#/definitions/io.k8s.apimachinery.pkg.api.resource.Quantity"},
      "labels": {"type": "object", "additionalProperties": {"type": "string"}},
      "tree": {"$ref": "#/definitions/io.example.v1.Node"}
    }
  },
  "io.example.v1.Node": {
    "type": "object",
    "properties": {"children": {"type": "array", "items": {"$ref": "#/definitions/io.example.v1.Node"}}}
  },
  "io.k8s.apimachinery.pkg.util.intstr.IntOrString": {"type": "string", "format": "int-or-string"},
  "io.k8s.apimachinery.pkg.api.resource.Quantity": {"type": "string"},
  "io.example.v1.Unused": {"type": "object", "properties": {"a": {"type": "string"}}},
  "io.k8s.api.core.v1.Pod": {
    "type": "object",
    "properties": {"kind": {"type": "string"}},
    "x-kubernetes-group-version-kind": [{"group": "", "version": "v1", "kind": "Pod"}]
  }
}}`

const crd = `---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: gizmos.example.io}
spec:
  group: example.io
  names: {kind: Gizmo, plural: gizmos}
  scope: Namespaced
  versions:
  - name: v1alpha1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          apiVersion: {type: string}
          kind: {type: string}
          spec:
            type: object
            properties:
              port:
                anyOf: [{type: integer}, {type: string}]
                x-kubernetes-int-or-string: true
              template:
                type: object
                x-kubernetes-preserve-unknown-fields: true
`

func TestFileName(t *testing.T) {
	for _, tc := range []struct{ group, version, kind, want string }{
		{"", "v1", "Service", "service-v1.json"},
		{"apps", "v1", "Deployment", "deployment-apps-v1.json"},
		{"rbac.authorization.k8s.io", "v1", "ClusterRole", "clusterrole-rbac-v1.json"},
		{"argoproj.io", "v1alpha1", "Gateway", "gateway-argoproj-v1alpha1.json"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			if got := FileName(tc.group, tc.version, tc.kind); got != tc.want {
				t.Errorf("FileName(%q, %q, %q) = %q, want %q", tc.group, tc.version, tc.kind, got, tc.want)
			}
		})
	}
}

func TestFromSwagger(t *testing.T) {
	schemas, err := FromSwagger([]byte(swagger))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := sortedKeys(schemas), []string{"pod-v1.json", "widget-widgets-v1.json"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("files %v, want %v", got, want)
	}
	w := roundTrip(t, schemas["widget-widgets-v1.json"])
	for _, tc := range []struct {
		name string
		got  any
		want string
	}{
		{"top level: closed, not nullable, kind pinned", pick(w, "type", "additionalProperties", "required", "properties"),
			`{"additionalProperties":false,"properties":{"apiVersion":{"enum":["widgets.example.io/v1"],"type":"string"},` +
				`"kind":{"enum":["Widget"],"type":"string"},"spec":{"$ref":"#/definitions/io.example.v1.WidgetSpec"}},` +
				`"required":["spec"],"type":"object"}`},
		{"definitions: the closure only, recursion kept as a $ref", keys(w["definitions"]),
			`["io.example.v1.Node","io.example.v1.WidgetSpec","io.k8s.apimachinery.pkg.api.resource.Quantity","io.k8s.apimachinery.pkg.util.intstr.IntOrString"]`},
		{"nested objects: closed and nullable", def(w, "io.example.v1.Node"),
			`{"additionalProperties":false,"properties":{"children":{"items":{"$ref":"#/definitions/io.example.v1.Node"},"type":["array","null"]}},"type":["object","null"]}`},
		{"maps stay open", pick(def(w, "io.example.v1.WidgetSpec")["properties"].(map[string]any)["labels"].(map[string]any), "additionalProperties", "type"),
			`{"additionalProperties":{"type":["string","null"]},"type":["object","null"]}`},
		{"int-or-string", def(w, "io.k8s.apimachinery.pkg.util.intstr.IntOrString"),
			`{"oneOf":[{"type":["string","null"]},{"type":"integer"}]}`},
		{"Quantity", def(w, "io.k8s.apimachinery.pkg.api.resource.Quantity"),
			`{"oneOf":[{"type":["string","null"]},{"type":"number"}]}`},
		{"core group: apiVersion without a group", roundTrip(t, schemas["pod-v1.json"])["properties"],
			`{"apiVersion":{"enum":["v1"],"type":"string"},"kind":{"enum":["Pod"],"type":"string"}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := marshal(t, tc.got); got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestFromCRDs(t *testing.T) {
	schemas, err := FromCRDs([]byte(crd))
	if err != nil {
		t.Fatal(err)
	}
	s, ok := schemas["gizmo-example-v1alpha1.json"]
	if !ok {
		t.Fatalf("no gizmo-example-v1alpha1.json in %v", sortedKeys(schemas))
	}
	want := `{"additionalProperties":false,"properties":{` +
		`"apiVersion":{"enum":["example.io/v1alpha1"],"type":"string"},"kind":{"enum":["Gizmo"],"type":"string"},` +
		`"spec":{"additionalProperties":false,"properties":{` +
		`"port":{"oneOf":[{"type":["string","null"]},{"type":"integer"}]},` +
		`"template":{"type":["object","null"]}},"type":["object","null"]}},"type":"object"}`
	if got := marshal(t, s); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestRun(t *testing.T) {
	dir := t.TempDir()
	sw, crdFile := filepath.Join(dir, "swagger.json"), filepath.Join(dir, "crd.yaml")
	os.WriteFile(sw, []byte(swagger), 0o644)
	os.WriteFile(crdFile, []byte(crd), 0o644)
	out := filepath.Join(dir, "out")
	if err := run(sw, out, []string{crdFile}); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(out)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if want := []string{"gizmo-example-v1alpha1.json", "pod-v1.json", "widget-widgets-v1.json"}; !reflect.DeepEqual(names, want) {
		t.Errorf("wrote %v, want %v", names, want)
	}

	t.Run("missing definition", func(t *testing.T) {
		bad := `{"definitions": {"a.B": {"type": "object", "properties": {"c": {"$ref": "#/definitions/nope"}},
		  "x-kubernetes-group-version-kind": [{"group": "", "version": "v1", "kind": "B"}]}}}`
		_, err := FromSwagger([]byte(bad))
		if want := `a.B: $ref to a missing definition "nope"`; err == nil || err.Error() != want {
			t.Errorf("err = %v, want %s", err, want)
		}
	})
}

func roundTrip(t *testing.T, v any) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(marshal(t, v)), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func marshal(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func def(schema map[string]any, name string) map[string]any {
	return schema["definitions"].(map[string]any)[name].(map[string]any)
}

func keys(v any) []string { return sortedKeys(v.(map[string]any)) }

func pick(m map[string]any, ks ...string) map[string]any {
	out := map[string]any{}
	for _, k := range ks {
		out[k] = m[k]
	}
	return out
}
