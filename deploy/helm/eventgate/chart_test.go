// The chart's tests: helm lint, helm template under several values validated by kubeconform
// against the Kubernetes release's schemas (and the CRD's), the values schema, and a real
// install, upgrade and uninstall on kube-apiserver.
package eventgate_test

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/yaml"

	"github.com/eventgate/eventgate/pkg/testenv/helmenv"
	"github.com/eventgate/eventgate/pkg/testenv/kubeenv"
)

func TestMain(m *testing.M) { os.Exit(kubeenv.Run(m)) }

const namespace = "eventgate"

func TestLint(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"defaults", nil},
		{"single namespace", []string{"--set", "singleNamespace=true"}},
		{"everything on", everythingOn},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := helmenv.Run(t, append([]string{"lint", "--strict", helmenv.Chart(t)}, tc.args...)...)
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
		})
	}
}

// everythingOn turns every option on.
var everythingOn = []string{
	"--set", "controller.replicas=2",
	"--set", "controller.namespace=team-a",
	"--set", "controller.extraArgs={--workers=4}",
	"--set", "controller.podAnnotations.example\\.com/team=a",
	"--set", "controller.nodeSelector.kubernetes\\.io/os=linux",
	"--set", "controller.tolerations[0].key=dedicated,controller.tolerations[0].operator=Exists",
	"--set", "imagePullSecrets[0].name=regcred",
	"--set", "metrics.service.enabled=true",
	"--set", "metrics.serviceMonitor.enabled=true",
	"--set", "gateway.networkPolicy.enabled=true",
	"--set", "gateway.rbac.extraRules[0].apiGroups[0]=,gateway.rbac.extraRules[0].resources={pods},gateway.rbac.extraRules[0].verbs={get,list,watch}",
	"--set", "gateway.namespaces={team-a,team-b}",
}

// controllerRules are the controller's rights where Gateways live: what it needs, no more.
var controllerRules = []any{
	rule([]string{"argoproj.io"}, []string{"gateways"}, "get", "list", "watch", "patch"),
	// The OwnerReferencesPermissionEnforcement admission plugin's condition for the
	// blockOwnerDeletion of the children's ownerReferences.
	rule([]string{"argoproj.io"}, []string{"gateways/finalizers"}, "update"),
	// Server-side apply: create and patch, never update.
	rule([]string{"apps"}, []string{"deployments"}, "get", "list", "watch", "create", "patch", "delete"),
	rule([]string{""}, []string{"services"}, "get", "list", "watch", "create", "patch", "delete"),
	rule([]string{""}, []string{"events"}, "create", "patch"),
}

func TestTemplate(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		// skip lists kinds kubeconform has no schema for.
		skip  string
		check func(t *testing.T, objs []*unstructured.Unstructured)
	}{{
		name: "defaults",
		check: func(t *testing.T, objs []*unstructured.Unstructured) {
			wantKinds(t, objs, "ClusterRole", "ClusterRoleBinding", "ConfigMap", "CustomResourceDefinition", "Deployment", "Role", "RoleBinding", "ServiceAccount")
			wantNames(t, objs, "ClusterRole", "eventgate-controller", "eventgate-gateway")
			wantNames(t, objs, "Role", "eventgate-controller-self")
			wantNames(t, objs, "ServiceAccount", "argo-events-sa", "eventgate-controller")
			want(t, "controller ClusterRole rules", get(t, one(t, objs, "ClusterRole", "eventgate-controller"), "rules"), controllerRules)
			want(t, "its own namespace's rules", get(t, one(t, objs, "Role", "eventgate-controller-self"), "rules"), []any{
				rule([]string{"coordination.k8s.io"}, []string{"leases"}, "get", "create", "update"),
				rule([]string{""}, []string{"configmaps"}, "get"),
			})
			want(t, "gateway ClusterRole rules", get(t, one(t, objs, "ClusterRole", "eventgate-gateway"), "rules"), []any{
				rule([]string{"argoproj.io"}, []string{"gateways"}, "get", "patch"),
				rule([]string{""}, []string{"configmaps"}, "get", "list", "watch"),
				rule([]string{""}, []string{"secrets"}, "get"),
			})
			// Bound in the release namespace only, to its ServiceAccount: a gateway pod's rights
			// stop at its namespace.
			wantNames(t, objs, "ClusterRoleBinding", "eventgate-controller")
			wantNames(t, objs, "RoleBinding", "eventgate-controller-self", "eventgate-gateway")
			gwb := one(t, objs, "RoleBinding", "eventgate-gateway")
			want(t, "gateway binding namespace", gwb.GetNamespace(), namespace)
			want(t, "gateway binding role", get(t, gwb, "roleRef"), map[string]any{
				"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "eventgate-gateway",
			})
			want(t, "gateway binding subject", get(t, gwb, "subjects"), []any{
				map[string]any{"kind": "ServiceAccount", "name": "argo-events-sa", "namespace": namespace},
			})
			want(t, "ConfigMap config", config(t, objs), map[string]any{"instanceID": "argo-events"})

			dep := one(t, objs, "Deployment", "eventgate-controller")
			want(t, "replicas", get(t, dep, "spec", "replicas"), int64(1))
			want(t, "service account", get(t, dep, "spec", "template", "spec", "serviceAccountName"), "eventgate-controller")
			want(t, "pod securityContext", get(t, dep, "spec", "template", "spec", "securityContext"), map[string]any{
				"runAsNonRoot": true, "runAsUser": int64(65532), "runAsGroup": int64(65532),
				"seccompProfile": map[string]any{"type": "RuntimeDefault"},
			})
			c := container(t, dep)
			want(t, "image", c["image"], "eventgate/gateway-controller:0.1.0")
			want(t, "imagePullPolicy", c["imagePullPolicy"], "IfNotPresent")
			want(t, "no command: the image's entrypoint", c["command"], nil)
			want(t, "args", c["args"], []any{"--leader-elect=true", "--metrics-address=:8080"})
			want(t, "securityContext", c["securityContext"], map[string]any{
				"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true,
				"capabilities": map[string]any{"drop": []any{"ALL"}},
			})
			want(t, "env", c["env"].([]any)[:2], []any{
				map[string]any{"name": "NAMESPACE", "valueFrom": map[string]any{"fieldRef": map[string]any{"fieldPath": "metadata.namespace"}}},
				map[string]any{"name": "CONTROLLER_CONFIG_MAP", "value": "eventgate-controller-config"},
			})
			want(t, "ports", c["ports"], []any{map[string]any{"name": "metrics", "containerPort": int64(8080), "protocol": "TCP"}})
			want(t, "liveness", c["livenessProbe"].(map[string]any)["httpGet"], map[string]any{"path": "/healthz", "port": "metrics"})
			want(t, "readiness", c["readinessProbe"].(map[string]any)["httpGet"], map[string]any{"path": "/readyz", "port": "metrics"})
			if c["resources"] == nil {
				t.Error("no resources on the controller container")
			}
			for _, o := range objs {
				if o.GetKind() == "CustomResourceDefinition" {
					continue
				}
				if l := o.GetLabels(); l["app.kubernetes.io/instance"] != helmenv.Release || l["app.kubernetes.io/managed-by"] != "Helm" {
					t.Errorf("%s %s: labels %v lack the standard app.kubernetes.io ones", o.GetKind(), o.GetName(), l)
				}
			}
		},
	}, {
		name: "single namespace",
		args: []string{"--set", "singleNamespace=true"},
		check: func(t *testing.T, objs []*unstructured.Unstructured) {
			wantKinds(t, objs, "ConfigMap", "CustomResourceDefinition", "Deployment", "Role", "RoleBinding", "ServiceAccount")
			wantNames(t, objs, "Role", "eventgate-controller", "eventgate-controller-self", "eventgate-gateway")
			wantNames(t, objs, "RoleBinding", "eventgate-controller", "eventgate-controller-self", "eventgate-gateway")
			for _, o := range objs {
				if o.GetKind() != "CustomResourceDefinition" && o.GetNamespace() != namespace {
					t.Errorf("%s %s in namespace %q, want %q", o.GetKind(), o.GetName(), o.GetNamespace(), namespace)
				}
			}
			want(t, "controller Role rules", get(t, one(t, objs, "Role", "eventgate-controller"), "rules"), controllerRules)
			want(t, "ConfigMap config", config(t, objs), map[string]any{"instanceID": "argo-events", "namespace": namespace})
		},
	}, {
		name: "custom images",
		args: []string{"--set", "image.registry=registry.example.com:5000/eg/", "--set", "image.tag=1.2.3", "--set", "image.pullPolicy=Always"},
		check: func(t *testing.T, objs []*unstructured.Unstructured) {
			c := container(t, one(t, objs, "Deployment", "eventgate-controller"))
			want(t, "image", c["image"], "registry.example.com:5000/eg/gateway-controller:1.2.3")
			want(t, "imagePullPolicy", c["imagePullPolicy"], "Always")
		},
	}, {
		name: "controller image override",
		args: []string{"--set", "image.registry=registry.example.com/eg", "--set", "controller.image.repository=mirror.example.com/gc",
			"--set", "controller.image.tag=dev", "--set", "controller.image.pullPolicy=Never"},
		check: func(t *testing.T, objs []*unstructured.Unstructured) {
			c := container(t, one(t, objs, "Deployment", "eventgate-controller"))
			want(t, "image", c["image"], "mirror.example.com/gc:dev")
			want(t, "imagePullPolicy", c["imagePullPolicy"], "Never")
		},
	}, {
		name: "everything on",
		args: everythingOn,
		// The Prometheus Operator's CRD is not in the Kubernetes release's schemas.
		skip: "ServiceMonitor",
		check: func(t *testing.T, objs []*unstructured.Unstructured) {
			wantNames(t, objs, "Service", "eventgate-controller-metrics")
			wantNames(t, objs, "ServiceMonitor", "eventgate-controller")
			want(t, "ConfigMap config", config(t, objs), map[string]any{"instanceID": "argo-events", "namespace": "team-a"})
			dep := one(t, objs, "Deployment", "eventgate-controller")
			want(t, "replicas", get(t, dep, "spec", "replicas"), int64(2))
			want(t, "args", container(t, dep)["args"], []any{"--leader-elect=true", "--metrics-address=:8080", "--workers=4"})
			want(t, "pull secrets", get(t, dep, "spec", "template", "spec", "imagePullSecrets"), []any{map[string]any{"name": "regcred"}})
			want(t, "pod annotation", get(t, dep, "spec", "template", "metadata", "annotations").(map[string]any)["example.com/team"], "a")
			np := one(t, objs, "NetworkPolicy", "eventgate-gateways")
			want(t, "NetworkPolicy pods", get(t, np, "spec", "podSelector"), map[string]any{
				"matchExpressions": []any{map[string]any{"key": "gateway-name", "operator": "Exists"}},
			})
			want(t, "NetworkPolicy ingress", get(t, np, "spec", "ingress"), []any{
				map[string]any{"ports": []any{map[string]any{"port": int64(12000), "protocol": "TCP"}}},
			})
			// extraRules are cluster-wide, in a ClusterRole of their own.
			rules := get(t, one(t, objs, "ClusterRole", "eventgate-gateway-watch"), "rules").([]any)
			want(t, "extra gateway rule", rules[len(rules)-1], rule([]string{""}, []string{"pods"}, "get", "list", "watch"))
			want(t, "gateway ClusterRole rules", len(get(t, one(t, objs, "ClusterRole", "eventgate-gateway"), "rules").([]any)), 3)
			// gateway.namespaces: the ServiceAccount and a RoleBinding in each listed namespace.
			var sas, bindings []string
			for _, o := range objs {
				switch {
				case o.GetKind() == "ServiceAccount" && o.GetName() == "argo-events-sa":
					sas = append(sas, o.GetNamespace())
				case o.GetKind() == "RoleBinding" && o.GetName() == "eventgate-gateway":
					bindings = append(bindings, o.GetNamespace())
					want(t, "binding subject in "+o.GetNamespace(), get(t, o, "subjects"), []any{
						map[string]any{"kind": "ServiceAccount", "name": "argo-events-sa", "namespace": o.GetNamespace()},
					})
				}
			}
			want(t, "gateway ServiceAccounts' namespaces", sorted(sas), []string{namespace, "team-a", "team-b"})
			want(t, "gateway RoleBindings' namespaces", sorted(bindings), []string{namespace, "team-a", "team-b"})
			var subjects []string
			for _, s := range get(t, one(t, objs, "ClusterRoleBinding", "eventgate-gateway-watch"), "subjects").([]any) {
				subjects = append(subjects, s.(map[string]any)["namespace"].(string)+"/"+s.(map[string]any)["name"].(string))
			}
			want(t, "watch binding subjects", sorted(subjects), []string{namespace + "/argo-events-sa", "team-a/argo-events-sa", "team-b/argo-events-sa"})
		},
	}, {
		name: "network policy: from without ports",
		args: []string{"--set", "gateway.networkPolicy.enabled=true", "--set", "gateway.networkPolicy.ingressPorts=null",
			"--set", "gateway.networkPolicy.from[0].podSelector.matchLabels.app=sensor"},
		check: func(t *testing.T, objs []*unstructured.Unstructured) {
			// The peers may reach every port; not `ingress: []`, which admits no one.
			want(t, "NetworkPolicy ingress", get(t, one(t, objs, "NetworkPolicy", "eventgate-gateways"), "spec", "ingress"), []any{
				map[string]any{"from": []any{map[string]any{"podSelector": map[string]any{"matchLabels": map[string]any{"app": "sensor"}}}}},
			})
		},
	}, {
		name: "network policy: no ports, no from",
		args: []string{"--set", "gateway.networkPolicy.enabled=true", "--set", "gateway.networkPolicy.ingressPorts=null"},
		check: func(t *testing.T, objs []*unstructured.Unstructured) {
			want(t, "NetworkPolicy ingress", get(t, one(t, objs, "NetworkPolicy", "eventgate-gateways"), "spec", "ingress"), []any{})
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			manifests := helmenv.TemplateYAML(t, helmenv.Chart(t), append([]string{"--namespace", namespace, "--include-crds"}, tc.args...)...)
			var skip []string
			if tc.skip != "" {
				skip = []string{"-skip", tc.skip}
			}
			if out, err := helmenv.Validate(t, manifests, skip...); err != nil {
				t.Fatal(err)
			} else if !strings.Contains(out, "Invalid: 0, Errors: 0") {
				t.Fatalf("kubeconform: %s", out)
			}
			objs, err := helmenv.Decode(manifests)
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, objs)
		})
	}
}

// TestValuesSchema: a value the chart does not know, or of the wrong type, fails the install
// and names itself; values the chart passes through to Kubernetes are checked by kubeconform.
func TestValuesSchema(t *testing.T) {
	chart := helmenv.Chart(t)
	for _, tc := range []struct {
		name string
		set  string
		want string
	}{
		{"unknown top-level key", "singleNamespaces=true", "additional properties 'singleNamespaces' not allowed"},
		{"unknown nested key", "controller.replcas=2", "additional properties 'replcas' not allowed"},
		{"unknown key deeper", "gateway.networkPolicy.enable=true", "additional properties 'enable' not allowed"},
		{"wrong type", "controller.replicas=two", "/controller/replicas': got string, want integer"},
		{"not one of", "controller.logLevel=verbose", "/controller/logLevel"},
		// The API server refuses a rule with resources but no apiGroups.
		{"extra rule without apiGroups", "gateway.rbac.extraRules[0].resources={pods},gateway.rbac.extraRules[0].verbs={get}",
			"missing property 'apiGroups'"},
		{"extra rule without resources", "gateway.rbac.extraRules[0].apiGroups[0]=,gateway.rbac.extraRules[0].verbs={get}",
			"missing property 'resources'"},
		{"gateway namespace not a name", "gateway.namespaces={Team_A}", "/gateway/namespaces/0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := helmenv.Run(t, "template", helmenv.Release, chart, "--set", tc.set)
			if err == nil {
				t.Fatalf("--set %s: rendered without error", tc.set)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("--set %s: error does not say %q:\n%v", tc.set, tc.want, err)
			}
		})
	}

	t.Run("a misspelt field in a pass-through value", func(t *testing.T) {
		manifests := helmenv.TemplateYAML(t, chart, "--set", "controller.securityContext.runAsUserr=1000")
		out, err := helmenv.Validate(t, manifests)
		if err == nil || !strings.Contains(out, "additional properties 'runAsUserr' not allowed") {
			t.Errorf("kubeconform passed a Deployment with securityContext.runAsUserr (err %v):\n%s", err, out)
		}
	})
}

// TestExamplesMatchCRD validates the shipped example Gateways against the CRD's schema, and
// shows that the schema is strict.
func TestExamplesMatchCRD(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(helmenv.Chart(t), "..", "..", "examples", "*", "gateway.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no example Gateways (%v)", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(filepath.Dir(f)), func(t *testing.T) {
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := helmenv.Validate(t, raw); err != nil {
				t.Fatal(err)
			}
		})
	}
	t.Run("misspelt field", func(t *testing.T) {
		bad := "apiVersion: argoproj.io/v1alpha1\nkind: Gateway\nmetadata: {name: g}\n" +
			"spec: {type: webhook, eventSource: es, eventProtocol: {type: HTTP}, procesorPort: \"9330\"}\n"
		out, err := helmenv.Validate(t, []byte(bad))
		if err == nil || !strings.Contains(out, "additional properties 'procesorPort' not allowed") {
			t.Errorf("kubeconform passed a Gateway with spec.procesorPort (err %v):\n%s", err, out)
		}
	})
}

var (
	crdGVR         = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	deploymentGVR  = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
	serviceAcctGVR = schema.GroupVersionResource{Version: "v1", Resource: "serviceaccounts"}
	configMapGVR   = schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}
	rbac           = func(r string) schema.GroupVersionResource {
		return schema.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: r}
	}
)

// TestInstall installs the chart into a real API server (no kubelet: nothing runs, so no
// --wait), upgrades it with a changed value and uninstalls it, which keeps the CRD.
func TestInstall(t *testing.T) {
	env := kubeenv.Shared(t)
	chart := helmenv.Chart(t)
	c := kubeenv.Dynamic(t, env.Admin)
	ctx := context.Background()
	helm := func(args ...string) {
		t.Helper()
		args = append(args, "--kubeconfig", env.AdminKubeconfig, "--namespace", namespace, "--timeout", "2m")
		if out, err := helmenv.Run(t, args...); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
	}
	exists := func(gvr schema.GroupVersionResource, ns, name string) *unstructured.Unstructured {
		t.Helper()
		var r interface {
			Get(context.Context, string, metav1.GetOptions, ...string) (*unstructured.Unstructured, error)
		} = c.Resource(gvr)
		if ns != "" {
			r = c.Resource(gvr).Namespace(ns)
		}
		obj, err := r.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("%s %s/%s: %v", gvr.Resource, ns, name, err)
		}
		return obj
	}

	helm("install", helmenv.Release, chart, "--create-namespace")
	exists(crdGVR, "", "gateways.argoproj.io")
	dep := exists(deploymentGVR, namespace, "eventgate-controller")
	exists(serviceAcctGVR, namespace, "eventgate-controller")
	exists(serviceAcctGVR, namespace, "argo-events-sa")
	exists(configMapGVR, namespace, "eventgate-controller-config")
	exists(rbac("clusterroles"), "", "eventgate-controller")
	exists(rbac("clusterrolebindings"), "", "eventgate-controller")
	exists(rbac("clusterroles"), "", "eventgate-gateway")
	exists(rbac("rolebindings"), namespace, "eventgate-gateway")
	exists(rbac("roles"), namespace, "eventgate-controller-self")
	exists(rbac("rolebindings"), namespace, "eventgate-controller-self")
	want(t, "installed replicas", get(t, dep, "spec", "replicas"), int64(1))

	helm("upgrade", helmenv.Release, chart, "--set", "controller.replicas=2", "--set", "image.tag=0.2.0")
	dep = exists(deploymentGVR, namespace, "eventgate-controller")
	want(t, "upgraded replicas", get(t, dep, "spec", "replicas"), int64(2))
	want(t, "upgraded image", container(t, dep)["image"], "eventgate/gateway-controller:0.2.0")

	helm("uninstall", helmenv.Release)
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := c.Resource(deploymentGVR).Namespace(namespace).Get(ctx, "eventgate-controller", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the controller's Deployment is still there after helm uninstall (%v)", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := c.Resource(rbac("clusterroles")).Get(ctx, "eventgate-controller", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("ClusterRole eventgate-controller after uninstall: %v, want NotFound", err)
	}
	exists(crdGVR, "", "gateways.argoproj.io")
}

// TestRBAC creates the chart's ServiceAccounts and RBAC objects on a real API server and asks
// it what each ServiceAccount may do: the rights the controller and gateway pods need, in the
// namespaces they need them, and no more.
func TestRBAC(t *testing.T) {
	env := kubeenv.Shared(t)
	// sa is the ServiceAccount's name, as sa or namespace/sa (default: the release's
	// namespace); resource may name a subresource, as resource/subresource.
	type access struct {
		sa, verb, group, resource, ns string
		allowed                       bool
	}
	const ctl, gw = "eventgate-controller", "argo-events-sa"
	// The gateway ServiceAccount of a namespace listed in gateway.namespaces, and of one not.
	const gwListed, gwOther = "rbac-cluster-listed/argo-events-sa", "team-a/argo-events-sa"
	for _, tc := range []struct {
		name, ns string
		// more namespaces to create first
		more   []string
		set    []string
		checks []access
	}{{
		name: "cluster-wide, resources to watch",
		ns:   "rbac-cluster",
		more: []string{"rbac-cluster-listed"},
		set: []string{"gateway.rbac.watch[0].resources={configmaps,pods},gateway.rbac.watch[1].apiGroup=apps,gateway.rbac.watch[1].resources={deployments}",
			"gateway.namespaces={rbac-cluster-listed}"},
		checks: []access{
			{gw, "watch", "", "pods", "team-a", true},
			{gw, "list", "apps", "deployments", "team-a", true},
			{gw, "create", "apps", "deployments", "team-a", false},
			{gw, "list", "", "services", "team-a", false},
			{ctl, "watch", "argoproj.io", "gateways", "team-a", true},
			{ctl, "patch", "argoproj.io", "gateways", "team-a", true},
			{ctl, "update", "argoproj.io", "gateways", "team-a", false},
			{ctl, "update", "argoproj.io", "gateways/finalizers", "team-a", true},
			{ctl, "create", "apps", "deployments", "team-a", true},
			{ctl, "update", "apps", "deployments", "team-a", false},
			{ctl, "update", "", "services", "team-a", false},
			{ctl, "delete", "", "services", "team-a", true},
			{ctl, "create", "", "events", "team-a", true},
			{ctl, "update", "coordination.k8s.io", "leases", "rbac-cluster", true},
			{ctl, "update", "coordination.k8s.io", "leases", "team-a", false},
			{ctl, "get", "", "configmaps", "rbac-cluster", true},
			{ctl, "watch", "", "configmaps", "rbac-cluster", false},
			{ctl, "get", "", "configmaps", "team-a", false},
			{ctl, "get", "", "secrets", "rbac-cluster", false},
			{ctl, "create", "", "pods", "team-a", false},
			{gw, "get", "argoproj.io", "gateways", "rbac-cluster", true},
			{gw, "patch", "argoproj.io", "gateways", "rbac-cluster", true},
			{gw, "delete", "argoproj.io", "gateways", "rbac-cluster", false},
			{gw, "watch", "", "configmaps", "rbac-cluster", true},
			{gw, "get", "", "secrets", "rbac-cluster", true},
			{gw, "list", "", "secrets", "rbac-cluster", false},
			// A gateway pod's rights stop at its namespace: no other namespace's Secret or
			// Gateway (whose pod template the controller would run).
			{gw, "patch", "argoproj.io", "gateways", "team-a", false},
			{gw, "get", "", "secrets", "team-a", false},
			{gw, "get", "", "secrets", "rbac-cluster-listed", false},
			// A listed namespace's ServiceAccount: what the gateway-client and the servers
			// need, in its own namespace; the watch rules cluster-wide.
			{gwListed, "get", "argoproj.io", "gateways", "rbac-cluster-listed", true},
			{gwListed, "patch", "argoproj.io", "gateways", "rbac-cluster-listed", true},
			{gwListed, "watch", "", "configmaps", "rbac-cluster-listed", true},
			{gwListed, "get", "", "secrets", "rbac-cluster-listed", true},
			{gwListed, "watch", "", "pods", "team-a", true},
			{gwListed, "get", "", "secrets", "rbac-cluster", false},
			{gwListed, "patch", "argoproj.io", "gateways", "rbac-cluster", false},
			// A namespace not listed: nothing (NOTES.txt says what to make there).
			{gwOther, "get", "argoproj.io", "gateways", "team-a", false},
			{gwOther, "get", "", "secrets", "team-a", false},
		},
	}, {
		name: "single namespace, extra gateway rule",
		ns:   "rbac-single",
		set: []string{"singleNamespace=true",
			"gateway.rbac.extraRules[0].apiGroups[0]=,gateway.rbac.extraRules[0].resources={pods},gateway.rbac.extraRules[0].verbs={list,watch}"},
		checks: []access{
			{ctl, "watch", "argoproj.io", "gateways", "rbac-single", true},
			{ctl, "watch", "argoproj.io", "gateways", "team-a", false},
			{ctl, "create", "apps", "deployments", "rbac-single", true},
			{ctl, "create", "apps", "deployments", "team-a", false},
			{ctl, "update", "coordination.k8s.io", "leases", "rbac-single", true},
			{gw, "patch", "argoproj.io", "gateways", "rbac-single", true},
			{gw, "patch", "argoproj.io", "gateways", "team-a", false},
			{gw, "list", "", "pods", "rbac-single", true},
			{gw, "list", "", "pods", "team-a", false},
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			var nss []*unstructured.Unstructured
			for _, n := range append([]string{tc.ns}, tc.more...) {
				nss = append(nss, &unstructured.Unstructured{Object: map[string]any{
					"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": n},
				}})
			}
			objs := helmenv.Render(t, tc.ns, tc.set...)
			helmenv.Apply(t, env.Admin, append(nss,
				helmenv.Select(objs, "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "ConfigMap")...))
			account := func(a access) (namespace, name string) {
				if ns, name, ok := strings.Cut(a.sa, "/"); ok {
					return ns, name
				}
				return tc.ns, a.sa
			}
			// The authorizer follows new RBAC objects a moment later: wait for the granted
			// rights first, then check every answer.
			for _, a := range tc.checks {
				if a.allowed {
					if res, _, sub := strings.Cut(a.resource, "/"); !sub {
						ns, name := account(a)
						kubeenv.WaitAllowed(t, kubeenv.AsServiceAccount(env.Admin, ns, name), a.ns, a.verb, a.group, res)
					}
				}
			}
			for _, a := range tc.checks {
				ns, name := account(a)
				c := kubeenv.Dynamic(t, kubeenv.AsServiceAccount(env.Admin, ns, name))
				resource, sub, _ := strings.Cut(a.resource, "/")
				review := &unstructured.Unstructured{Object: map[string]any{
					"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
					"spec": map[string]any{"resourceAttributes": map[string]any{
						"namespace": a.ns, "verb": a.verb, "group": a.group, "resource": resource, "subresource": sub,
					}},
				}}
				res, err := c.Resource(schema.GroupVersionResource{Group: "authorization.k8s.io", Version: "v1", Resource: "selfsubjectaccessreviews"}).
					Create(context.Background(), review, metav1.CreateOptions{})
				if err != nil {
					t.Fatal(err)
				}
				if allowed, _, _ := unstructured.NestedBool(res.Object, "status", "allowed"); allowed != a.allowed {
					t.Errorf("%s may %s %s.%s in %s: %v, want %v", a.sa, a.verb, a.resource, a.group, a.ns, allowed, a.allowed)
				}
			}
		})
	}
}

func rule(groups, resources []string, verbs ...string) map[string]any {
	return map[string]any{"apiGroups": strs(groups), "resources": strs(resources), "verbs": strs(verbs)}
}

func strs(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

func get(t *testing.T, o *unstructured.Unstructured, path ...string) any {
	t.Helper()
	v, _, err := unstructured.NestedFieldNoCopy(o.Object, path...)
	if err != nil {
		t.Fatalf("%s %s: %s: %v", o.GetKind(), o.GetName(), strings.Join(path, "."), err)
	}
	return v
}

func one(t *testing.T, objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	t.Helper()
	o, ok := helmenv.Find(objs, kind)[name]
	if !ok {
		t.Fatalf("no %s %s among %v", kind, name, names(objs))
	}
	return o
}

func container(t *testing.T, dep *unstructured.Unstructured) map[string]any {
	t.Helper()
	cs := get(t, dep, "spec", "template", "spec", "containers").([]any)
	if len(cs) != 1 {
		t.Fatalf("%d containers, want 1", len(cs))
	}
	return cs[0].(map[string]any)
}

func config(t *testing.T, objs []*unstructured.Unstructured) map[string]any {
	t.Helper()
	raw, _ := get(t, one(t, objs, "ConfigMap", "eventgate-controller-config"), "data", "config").(string)
	var c map[string]any
	if err := yaml.UnmarshalStrict([]byte(raw), &c); err != nil {
		t.Fatalf("ConfigMap config %q: %v", raw, err)
	}
	return c
}

func wantKinds(t *testing.T, objs []*unstructured.Unstructured, kinds ...string) {
	t.Helper()
	want(t, "kinds", helmenv.Kinds(objs), kinds)
}

func wantNames(t *testing.T, objs []*unstructured.Unstructured, kind string, want ...string) {
	t.Helper()
	var got []string
	for name := range helmenv.Find(objs, kind) {
		got = append(got, name)
	}
	if !reflect.DeepEqual(sorted(got), sorted(want)) {
		t.Errorf("%s: %v, want %v", kind, sorted(got), sorted(want))
	}
}

func want(t *testing.T, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		g, _ := yaml.Marshal(got)
		w, _ := yaml.Marshal(want)
		t.Errorf("%s:\ngot:\n%s\nwant:\n%s", what, g, w)
	}
}

func names(objs []*unstructured.Unstructured) []string {
	var out []string
	for _, o := range objs {
		out = append(out, o.GetKind()+" "+o.GetName())
	}
	return out
}

func sorted(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}
