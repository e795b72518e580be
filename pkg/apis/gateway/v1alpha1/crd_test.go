package v1alpha1

import (
	"fmt"
	"reflect"
	"slices"
	"sort"
	"testing"

	"sigs.k8s.io/yaml"
)

const crdFile = "deploy/helm/eventgate/crds/argoproj.io_gateways.yaml"

// The subset of apiextensions.k8s.io/v1 CustomResourceDefinition the tests look at; the real
// type lives in k8s.io/apiextensions-apiserver, too heavy a dependency for this.
type crd struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name string `json:"name"`
	} `json:"metadata"`
	Spec struct {
		Group string `json:"group"`
		Names struct {
			Kind       string   `json:"kind"`
			ListKind   string   `json:"listKind"`
			Plural     string   `json:"plural"`
			Singular   string   `json:"singular"`
			ShortNames []string `json:"shortNames"`
		} `json:"names"`
		Scope    string `json:"scope"`
		Versions []struct {
			Name                     string `json:"name"`
			Served                   bool   `json:"served"`
			Storage                  bool   `json:"storage"`
			AdditionalPrinterColumns []struct {
				Name     string `json:"name"`
				JSONPath string `json:"jsonPath"`
			} `json:"additionalPrinterColumns"`
			Subresources map[string]any `json:"subresources"`
			Schema       struct {
				OpenAPIV3Schema map[string]any `json:"openAPIV3Schema"`
			} `json:"schema"`
		} `json:"versions"`
	} `json:"spec"`
}

func readCRD(t *testing.T) *crd {
	t.Helper()
	var c crd
	if err := yaml.Unmarshal(readFile(t, crdFile), &c); err != nil {
		t.Fatalf("%s: %v", crdFile, err)
	}
	return &c
}

func TestCRD(t *testing.T) {
	c := readCRD(t)
	if c.APIVersion != "apiextensions.k8s.io/v1" || c.Kind != "CustomResourceDefinition" || c.Metadata.Name != Plural+"."+GroupName {
		t.Errorf("apiVersion/kind/name = %s/%s/%s", c.APIVersion, c.Kind, c.Metadata.Name)
	}
	n := c.Spec.Names
	if c.Spec.Group != GroupName || c.Spec.Scope != "Namespaced" || n.Kind != Kind || n.ListKind != Kind+"List" ||
		n.Plural != Plural || n.Singular != "gateway" || !reflect.DeepEqual(n.ShortNames, []string{"gw"}) {
		t.Errorf("group/scope/names = %s/%s/%+v", c.Spec.Group, c.Spec.Scope, n)
	}
	if len(c.Spec.Versions) != 1 {
		t.Fatalf("%d versions, want 1", len(c.Spec.Versions))
	}
	v := c.Spec.Versions[0]
	if v.Name != SchemeGroupVersion.Version || !v.Served || !v.Storage {
		t.Errorf("version %s served=%v storage=%v", v.Name, v.Served, v.Storage)
	}
	// v0.10 clients write status with a plain update, which a status subresource would drop.
	if _, ok := v.Subresources["status"]; ok {
		t.Error("the CRD has a status subresource")
	}
	columns := map[string]string{}
	for _, col := range v.AdditionalPrinterColumns {
		columns[col.Name] = col.JSONPath
	}
	for name, path := range map[string]string{"Type": ".spec.type", "Event Source": ".spec.eventSource", "Phase": ".status.phase"} {
		if columns[name] != path {
			t.Errorf("printer column %q = %q, want %q", name, columns[name], path)
		}
	}
	spec := lookup(v.Schema.OpenAPIV3Schema, "properties", "spec")
	for _, field := range []string{"template", "service"} {
		if lookup(spec, "properties", field)["x-kubernetes-preserve-unknown-fields"] != true {
			t.Errorf("spec.%s does not preserve unknown fields", field)
		}
	}
	// The API server refuses what the schema can tell of a sensor's delivery, naming the
	// field, before any controller or client sees the Gateway.
	delivery := lookup(spec, "properties", "watchers", "properties", "sensors", "items", "properties", "delivery", "properties")
	if got := lookup(delivery, "retry")["minimum"]; got != 0.0 {
		t.Errorf("delivery.retry minimum = %v, want 0", got)
	}
	if got := fmt.Sprint(lookup(delivery, "backoffPolicy")["enum"]); got != "[exponential linear]" {
		t.Errorf("delivery.backoffPolicy enum = %s, want [exponential linear]", got)
	}
}

// The API server prunes fields its schema does not declare, and rejects missing required
// ones: the shipped examples must survive both unchanged.
func TestCRDKeepsExamples(t *testing.T) {
	schema := readCRD(t).Spec.Versions[0].Schema.OpenAPIV3Schema
	for name, path := range examples {
		t.Run(name, func(t *testing.T) {
			var manifest map[string]any
			if err := yaml.Unmarshal(readFile(t, path), &manifest); err != nil {
				t.Fatal(err)
			}
			var problems []string
			for _, field := range []string{"apiVersion", "kind", "spec"} {
				problems = append(problems, schemaProblems(lookup(schema, "properties", field), manifest[field], field)...)
			}
			for _, p := range problems {
				t.Error(p)
			}
		})
	}
}

// The check above is only worth something if it fails where the API server would.
func TestSchemaProblemsFindsWhatTheServerWouldRefuse(t *testing.T) {
	schema := lookup(readCRD(t).Spec.Versions[0].Schema.OpenAPIV3Schema, "properties", "spec")
	var manifest map[string]any
	if err := yaml.Unmarshal(readFile(t, examples["webhook"]), &manifest); err != nil {
		t.Fatal(err)
	}
	spec := manifest["spec"].(map[string]any)
	delete(spec, "type")
	spec["watcher"] = spec["watchers"]
	spec["processorPort"] = 9330.0 // as YAML decodes an unquoted port
	spec["template"].(map[string]any)["anything"] = "kept: the template is schemaless"
	got := schemaProblems(schema, spec, "spec")
	want := []string{
		"spec.type: required by the schema, missing",
		"spec.processorPort: a float64, the schema wants string",
		"spec.watcher: not in the schema (pruned)",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("problems = %q, want %q", got, want)
	}
}

// schemaProblems lists the fields of value that a structural schema would prune, lacks
// though required, or types differently.
func schemaProblems(schema map[string]any, value any, path string) []string {
	if schema == nil {
		return []string{path + ": not in the schema (pruned)"}
	}
	if schema["x-kubernetes-preserve-unknown-fields"] == true {
		return nil
	}
	var problems []string
	switch v := value.(type) {
	case map[string]any:
		if req, ok := schema["required"].([]any); ok {
			for _, r := range req {
				if _, ok := v[r.(string)]; !ok {
					problems = append(problems, fmt.Sprintf("%s.%s: required by the schema, missing", path, r))
				}
			}
		}
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			sub := lookup(schema, "properties", k)
			if sub == nil {
				sub, _ = schema["additionalProperties"].(map[string]any)
			}
			problems = append(problems, schemaProblems(sub, v[k], path+"."+k)...)
		}
	case []any:
		items, _ := schema["items"].(map[string]any)
		for i, e := range v {
			problems = append(problems, schemaProblems(items, e, fmt.Sprintf("%s[%d]", path, i))...)
		}
	case string, float64, bool: // what JSON decodes scalars to
		want := map[string][]any{"string": {"string"}, "float64": {"integer", "number"}, "bool": {"boolean"}}[fmt.Sprintf("%T", v)]
		if !slices.Contains(want, schema["type"]) {
			problems = append(problems, fmt.Sprintf("%s: a %T, the schema wants %v", path, v, schema["type"]))
		}
	}
	return problems
}

func lookup(m map[string]any, keys ...string) map[string]any {
	for _, k := range keys {
		m, _ = m[k].(map[string]any)
	}
	return m
}
