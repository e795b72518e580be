package kubeenv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
)

var (
	crdGVR       = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	namespaceGVR = schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}
)

// Dynamic is a dynamic client for cfg.
func Dynamic(t testing.TB, cfg *rest.Config) *dynamic.DynamicClient {
	t.Helper()
	c, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// InstallCRDs applies the CustomResourceDefinitions in the given YAML files (several
// documents each allowed) and waits until the API server serves them. Installing the same
// CRD again, from another test, is fine.
func (e *Env) InstallCRDs(t testing.TB, files ...string) {
	t.Helper()
	c := Dynamic(t, e.Admin)
	ctx := context.Background()
	for _, file := range files {
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewYAMLOrJSONDecoder(strings.NewReader(string(raw)), 4096)
		for {
			var obj map[string]any
			if err := dec.Decode(&obj); err != nil {
				if errors.Is(err, io.EOF) {
					break
				}
				t.Fatalf("%s: %v", file, err)
			}
			if obj == nil {
				continue
			}
			crd := &unstructured.Unstructured{Object: obj}
			_, err := c.Resource(crdGVR).Create(ctx, crd, metav1.CreateOptions{})
			if err != nil && !apierrors.IsAlreadyExists(err) {
				t.Fatalf("create CRD %s from %s: %v", crd.GetName(), file, err)
			}
			WaitServed(t, c, crd)
		}
	}
}

// WaitServed waits for the CRD's Established condition and for its resource to list.
func WaitServed(t testing.TB, c dynamic.Interface, crd *unstructured.Unstructured) {
	t.Helper()
	group, _, _ := unstructured.NestedString(crd.Object, "spec", "group")
	plural, _, _ := unstructured.NestedString(crd.Object, "spec", "names", "plural")
	versions, _, _ := unstructured.NestedSlice(crd.Object, "spec", "versions")
	var version string
	if len(versions) > 0 {
		version, _, _ = unstructured.NestedString(versions[0].(map[string]any), "name")
	}
	gvr := schema.GroupVersionResource{Group: group, Version: version, Resource: plural}
	deadline := time.Now().Add(30 * time.Second)
	var last error
	for time.Now().Before(deadline) {
		got, err := c.Resource(crdGVR).Get(context.Background(), crd.GetName(), metav1.GetOptions{})
		if err == nil {
			if last = established(got); last == nil {
				if _, last = c.Resource(gvr).List(context.Background(), metav1.ListOptions{Limit: 1}); last == nil {
					return
				}
			}
		} else {
			last = err
		}
		time.Sleep(50 * time.Millisecond) // polling the API server; no event to wait on
	}
	t.Fatalf("CRD %s not served after 30 s: %v", crd.GetName(), last)
}

func established(crd *unstructured.Unstructured) error {
	conds, _, _ := unstructured.NestedSlice(crd.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == "Established" && m["status"] == "True" {
			return nil
		}
	}
	return fmt.Errorf("CRD %s not established yet", crd.GetName())
}

// Namespace creates a namespace of its own for the test. Nothing deletes it: no
// namespace controller runs, and the API server goes away with the test process.
func (e *Env) Namespace(t testing.TB) string {
	t.Helper()
	ns := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "Namespace",
		"metadata": map[string]any{"generateName": "test-"},
	}}
	got, err := Dynamic(t, e.Admin).Resource(namespaceGVR).Create(context.Background(), ns, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	return got.GetName()
}

// WaitAllowed waits until the user of cfg may do verb on resource (group "" for the core
// group) in namespace. The API server's RBAC authorizer follows new Roles and bindings
// through a watch, a moment after they are created: a test that grants a right waits for it
// before relying on it.
func WaitAllowed(t testing.TB, cfg *rest.Config, namespace, verb, group, resource string) {
	t.Helper()
	c := Dynamic(t, cfg)
	gvr := schema.GroupVersionResource{Group: "authorization.k8s.io", Version: "v1", Resource: "selfsubjectaccessreviews"}
	deadline := time.Now().Add(30 * time.Second)
	for {
		review := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
			"spec": map[string]any{"resourceAttributes": map[string]any{
				"namespace": namespace, "verb": verb, "group": group, "resource": resource,
			}},
		}}
		res, err := c.Resource(gvr).Create(context.Background(), review, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("access review: %v", err)
		}
		if allowed, _, _ := unstructured.NestedBool(res.Object, "status", "allowed"); allowed {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s %s.%s in %s still not allowed after 30 s", verb, resource, group, namespace)
		}
		time.Sleep(20 * time.Millisecond) // polling the API server; no event to wait on
	}
}
