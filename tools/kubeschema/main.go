// Command kubeschema writes the JSON schemas kubeconform validates manifests against, offline:
// one standalone, strict schema per kind and version, from the swagger.json of a Kubernetes
// release and from CustomResourceDefinition files. tools/testservers/build.sh runs it.
//
//	go run ./tools/kubeschema -swagger swagger.json -out DIR [crd.yaml ...]
//
// kubeconform then reads them with
//
//	-schema-location 'DIR/{{ .ResourceKind }}{{ .KindSuffix }}.json'
//
// Each file carries the definitions it needs under "definitions", so that it resolves without
// loading other files (kubeconform compiles each schema alone). Objects that list their
// properties admit no others, so a misspelt field fails; fields may be null, as Kubernetes
// accepts; int-or-string fields and Quantities take a string or a number; kind and apiVersion
// are enums, so a schema never validates a manifest of another kind.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"
)

func main() {
	swagger := flag.String("swagger", "", "a Kubernetes api/openapi-spec/swagger.json")
	out := flag.String("out", "", "the folder to write the schemas to (created)")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: kubeschema -swagger FILE -out DIR [crd.yaml ...]\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if err := run(*swagger, *out, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "kubeschema:", err)
		os.Exit(1)
	}
}

func run(swagger, out string, crds []string) error {
	if swagger == "" || out == "" {
		return errors.New("-swagger and -out are required")
	}
	raw, err := os.ReadFile(swagger)
	if err != nil {
		return err
	}
	schemas, err := FromSwagger(raw)
	if err != nil {
		return fmt.Errorf("%s: %w", swagger, err)
	}
	for _, file := range crds {
		raw, err := os.ReadFile(file)
		if err != nil {
			return err
		}
		more, err := FromCRDs(raw)
		if err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
		if err := merge(schemas, more); err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	for name, schema := range schemas {
		b, err := json.Marshal(schema)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if err := os.WriteFile(filepath.Join(out, name), b, 0o644); err != nil {
			return err
		}
	}
	fmt.Fprintf(os.Stderr, "kubeschema: %d schemas in %s\n", len(schemas), out)
	return nil
}

// FileName is the name kubeconform looks for, as its `{{ .ResourceKind }}{{ .KindSuffix }}.json`
// spells it: deployment-apps-v1.json, service-v1.json, gateway-argoproj-v1alpha1.json.
func FileName(group, version, kind string) string {
	suffix := "-" + strings.ToLower(version)
	if group != "" {
		suffix = "-" + strings.ToLower(strings.Split(group, ".")[0]) + suffix
	}
	return strings.ToLower(kind) + suffix + ".json"
}

type gvk struct{ Group, Version, Kind string }

func (k gvk) apiVersion() string {
	if k.Group == "" {
		return k.Version
	}
	return k.Group + "/" + k.Version
}

const refPrefix = "#/definitions/"

// FromSwagger returns a schema per kind and version that the swagger document's definitions
// name in x-kubernetes-group-version-kind, by file name.
func FromSwagger(raw []byte) (map[string]map[string]any, error) {
	var doc struct {
		Definitions map[string]map[string]any `json:"definitions"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, err
	}
	if len(doc.Definitions) == 0 {
		return nil, errors.New("no definitions")
	}
	out := map[string]map[string]any{}
	names := sortedKeys(doc.Definitions)
	for _, name := range names {
		def := doc.Definitions[name]
		kinds, err := gvks(def["x-kubernetes-group-version-kind"])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if len(kinds) == 0 {
			continue
		}
		needed, err := closure(doc.Definitions, def)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		for _, k := range kinds {
			schema := convert(def, false).(map[string]any)
			if len(needed) > 0 {
				defs := map[string]any{}
				for _, n := range needed {
					defs[n] = convert(doc.Definitions[n], true)
					// swagger types resource.Quantity as a string, but manifests give
					// numbers too (cpu: 1).
					if strings.HasSuffix(n, ".pkg.api.resource.Quantity") {
						defs[n] = map[string]any{"oneOf": []any{typed("string", true), map[string]any{"type": "number"}}}
					}
				}
				schema["definitions"] = defs
			}
			pinKind(schema, k)
			if err := merge(out, map[string]map[string]any{FileName(k.Group, k.Version, k.Kind): schema}); err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
		}
	}
	return out, nil
}

// FromCRDs returns a schema per kind and served version of the CustomResourceDefinitions in a
// YAML stream.
func FromCRDs(raw []byte) (map[string]map[string]any, error) {
	out := map[string]map[string]any{}
	for i, doc := range bytes.Split(raw, []byte("\n---")) {
		var crd struct {
			Kind string `json:"kind"`
			Spec struct {
				Group string `json:"group"`
				Names struct {
					Kind string `json:"kind"`
				} `json:"names"`
				Versions []struct {
					Name   string `json:"name"`
					Schema struct {
						OpenAPIV3Schema map[string]any `json:"openAPIV3Schema"`
					} `json:"schema"`
				} `json:"versions"`
			} `json:"spec"`
		}
		if err := yaml.Unmarshal(doc, &crd); err != nil {
			return nil, fmt.Errorf("document %d: %w", i+1, err)
		}
		if crd.Kind != "CustomResourceDefinition" {
			continue
		}
		for _, v := range crd.Spec.Versions {
			if v.Schema.OpenAPIV3Schema == nil {
				return nil, fmt.Errorf("%s %s: no openAPIV3Schema", crd.Spec.Names.Kind, v.Name)
			}
			k := gvk{crd.Spec.Group, v.Name, crd.Spec.Names.Kind}
			schema := convert(v.Schema.OpenAPIV3Schema, false).(map[string]any)
			pinKind(schema, k)
			out[FileName(k.Group, k.Version, k.Kind)] = schema
		}
	}
	return out, nil
}

func gvks(v any) ([]gvk, error) {
	if v == nil {
		return nil, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var out []gvk
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("x-kubernetes-group-version-kind: %w", err)
	}
	return out, nil
}

// closure lists the definitions that def refers to, directly or not, sorted.
func closure(defs map[string]map[string]any, def map[string]any) ([]string, error) {
	seen := map[string]bool{}
	todo := refs(def, nil)
	for len(todo) > 0 {
		n := todo[len(todo)-1]
		todo = todo[:len(todo)-1]
		if seen[n] {
			continue
		}
		d, ok := defs[n]
		if !ok {
			return nil, fmt.Errorf("$ref to a missing definition %q", n)
		}
		seen[n] = true
		todo = refs(d, todo)
	}
	return sortedKeys(seen), nil
}

func refs(node any, acc []string) []string {
	switch n := node.(type) {
	case map[string]any:
		if r, ok := n["$ref"].(string); ok {
			acc = append(acc, strings.TrimPrefix(r, refPrefix))
		}
		for _, v := range n {
			acc = refs(v, acc)
		}
	case []any:
		for _, v := range n {
			acc = refs(v, acc)
		}
	}
	return acc
}

// convert makes a swagger or OpenAPI v3 schema node a strict JSON schema (draft 4, which
// kubeconform assumes): descriptions and extensions dropped, objects closed, int-or-string
// and Quantity opened to both types, and, below the top (nullable), null allowed.
func convert(node any, nullable bool) any {
	switch n := node.(type) {
	case []any:
		out := make([]any, len(n))
		for i, v := range n {
			out[i] = convert(v, true)
		}
		return out
	case map[string]any:
		if n["format"] == "int-or-string" || n["x-kubernetes-int-or-string"] == true {
			return map[string]any{"oneOf": []any{typed("string", nullable), map[string]any{"type": "integer"}}}
		}
		out := map[string]any{}
		for k, v := range n {
			switch {
			case k == "description", k == "format", strings.HasPrefix(k, "x-"):
			case k == "type":
				if s, ok := v.(string); ok && nullable {
					out[k] = []any{s, "null"}
				} else {
					out[k] = v
				}
			case k == "properties", k == "definitions", k == "patternProperties":
				props := map[string]any{}
				for p, s := range v.(map[string]any) {
					props[p] = convert(s, true)
				}
				out[k] = props
			case k == "enum", k == "required", k == "$ref":
				out[k] = v
			default:
				out[k] = convert(v, true)
			}
		}
		if _, ok := n["properties"]; ok && n["x-kubernetes-preserve-unknown-fields"] != true {
			if _, set := n["additionalProperties"]; !set {
				out["additionalProperties"] = false
			}
		}
		return out
	}
	return node
}

func typed(t string, nullable bool) map[string]any {
	if nullable {
		return map[string]any{"type": []any{t, "null"}}
	}
	return map[string]any{"type": t}
}

// pinKind makes kind and apiVersion enums of the one value this schema is for.
func pinKind(schema map[string]any, k gvk) {
	props, _ := schema["properties"].(map[string]any)
	if props == nil {
		props = map[string]any{}
		schema["properties"] = props
	}
	props["kind"] = map[string]any{"type": "string", "enum": []any{k.Kind}}
	props["apiVersion"] = map[string]any{"type": "string", "enum": []any{k.apiVersion()}}
}

// merge adds more to dst, refusing two different schemas under one file name.
func merge(dst, more map[string]map[string]any) error {
	for name, s := range more {
		if old, ok := dst[name]; ok {
			a, _ := json.Marshal(old)
			b, _ := json.Marshal(s)
			if !bytes.Equal(a, b) {
				return fmt.Errorf("two different schemas for %s", name)
			}
		}
		dst[name] = s
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
