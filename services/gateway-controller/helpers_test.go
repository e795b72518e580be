package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"github.com/eventgate/eventgate/pkg/testenv"
	"github.com/eventgate/eventgate/pkg/testenv/kubeenv"
)

func TestMain(m *testing.M) { os.Exit(kubeenv.Run(m)) }

// Where the tests find the repository's files, from this package's folder (also under
// Bazel, where they come as data).
const (
	crdFile     = "../../deploy/helm/eventgate/crds/argoproj.io_gateways.yaml"
	seedGateway = "../../deploy/examples/webhook/gateway.yaml"
)

const (
	wait = 30 * time.Second
	poll = 50 * time.Millisecond
)

// kubeTest is a namespace of its own on the shared API server, with the Gateway CRD.
type kubeTest struct {
	env  *kubeenv.Env
	ns   string
	kube kubernetes.Interface
	gws  dynamic.ResourceInterface
}

func newKubeTest(t *testing.T) *kubeTest {
	t.Helper()
	env := kubeenv.Shared(t)
	env.InstallCRDs(t, crdFile)
	kube, err := kubernetes.NewForConfig(env.Admin)
	if err != nil {
		t.Fatal(err)
	}
	ns := env.Namespace(t)
	return &kubeTest{env: env, ns: ns, kube: kube, gws: kubeenv.Dynamic(t, env.Admin).Resource(gatewaysGVR).Namespace(ns)}
}

// controllerRBAC grants a ServiceAccount of the test namespace what the chart's ClusterRole
// grants the controller, bound in that namespace only.
func (k *kubeTest) controllerAccount(t *testing.T, rules []rbacv1.PolicyRule) string {
	t.Helper()
	ctx := context.Background()
	const name = "gateway-controller"
	_, err := k.kube.CoreV1().ServiceAccounts(k.ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = k.kube.RbacV1().Roles(k.ns).Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: rules}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = k.kube.RbacV1().RoleBindings(k.ns).Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: name, Namespace: k.ns}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return k.env.ServiceAccountKubeconfig(t, k.ns, name)
}

// controllerProc is the real gateway-controller binary.
type controllerProc struct {
	*testenv.Process
	metrics string // host:port of /metrics
}

// startController runs the controller binary for the test's namespace (its ConfigMap, Lease
// and Gateways there), with kubeconfig's rights.
func (k *kubeTest) startController(t *testing.T, kubeconfig string, args ...string) *controllerProc {
	t.Helper()
	addr := testenv.FreePort(t)
	base := []string{"--kubeconfig", kubeconfig, "--namespace", k.ns, "--watch-namespace", k.ns, "--metrics-address", addr}
	p := testenv.StartProcess(t, testenv.Binary(t, "services/gateway-controller"), append(base, args...))
	return &controllerProc{Process: p, metrics: addr}
}

// metric returns the value of an unlabelled metric, or "" while the server does not answer.
func (c *controllerProc) metric(name string) string {
	resp, err := http.Get("http://" + c.metrics + "/metrics")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return v
		}
	}
	return ""
}

// seed reads the seed's example Gateway as it is, but for the image names (v0.10's
// argoproj/* images become ours) and the namespace.
func (k *kubeTest) seed(t *testing.T) *unstructured.Unstructured {
	t.Helper()
	raw, err := os.ReadFile(seedGateway)
	if err != nil {
		t.Fatal(err)
	}
	text := strings.NewReplacer("argoproj/gateway-client", "eventgate/gateway-client", "argoproj/webhook-gateway", "eventgate/webhook").Replace(string(raw))
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(text), &u.Object); err != nil {
		t.Fatal(err)
	}
	u.SetNamespace(k.ns)
	return u
}

func (k *kubeTest) create(t *testing.T, gw *unstructured.Unstructured) {
	t.Helper()
	gw.SetNamespace(k.ns)
	if _, err := k.gws.Create(context.Background(), gw, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create Gateway %s: %v", gw.GetName(), err)
	}
}

func (k *kubeTest) patch(t *testing.T, name, patch string) {
	t.Helper()
	if _, err := k.gws.Patch(context.Background(), name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatalf("patch Gateway %s: %v", name, err)
	}
}

func (k *kubeTest) gateway(t *testing.T, name string) *unstructured.Unstructured {
	t.Helper()
	u, err := k.gws.Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// waitPhase waits until the Gateway's status.phase is phase, and returns its message.
func (k *kubeTest) waitPhase(t *testing.T, name, phase string) string {
	t.Helper()
	var message string
	testenv.Eventually(t, wait, poll, func() error {
		u := k.gateway(t, name)
		got, _, _ := unstructured.NestedString(u.Object, "status", "phase")
		message, _, _ = unstructured.NestedString(u.Object, "status", "message")
		if got != phase {
			return fmt.Errorf("Gateway %s: phase %q (%s), want %q", name, got, message, phase)
		}
		return nil
	})
	return message
}

// waitDeployment waits until the Deployment exists and cond holds for it.
func (k *kubeTest) waitDeployment(t *testing.T, name string, cond func(*appsv1.Deployment) error) *appsv1.Deployment {
	t.Helper()
	var d *appsv1.Deployment
	testenv.Eventually(t, wait, poll, func() error {
		var err error
		d, err = k.kube.AppsV1().Deployments(k.ns).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if cond != nil {
			return cond(d)
		}
		return nil
	})
	return d
}

func (k *kubeTest) waitService(t *testing.T, name string, cond func(*corev1.Service) error) *corev1.Service {
	t.Helper()
	var s *corev1.Service
	testenv.Eventually(t, wait, poll, func() error {
		var err error
		s, err = k.kube.CoreV1().Services(k.ns).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if cond != nil {
			return cond(s)
		}
		return nil
	})
	return s
}

func (k *kubeTest) waitGone(t *testing.T, what string, get func() error) {
	t.Helper()
	testenv.Eventually(t, wait, poll, func() error {
		err := get()
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		return fmt.Errorf("%s still exists", what)
	})
}

// makeAvailable writes the Deployment's status as the deployment controller would once its
// pod runs: there is no kubelet here (the one fake the tests allow).
func (k *kubeTest) makeAvailable(t *testing.T, name string) {
	t.Helper()
	ctx := context.Background()
	d, err := k.kube.AppsV1().Deployments(k.ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	d.Status = appsv1.DeploymentStatus{
		ObservedGeneration: d.Generation, Replicas: 1, ReadyReplicas: 1, AvailableReplicas: 1, UpdatedReplicas: 1,
		Conditions: []appsv1.DeploymentCondition{{
			Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue, Reason: "MinimumReplicasAvailable",
			LastUpdateTime: metav1.Now(), LastTransitionTime: metav1.Now(),
		}},
	}
	if _, err := k.kube.AppsV1().Deployments(k.ns).UpdateStatus(ctx, d, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// warnings are the Warning Events about the Gateway name, as "reason: message".
func (k *kubeTest) warnings(t *testing.T, name string) []string {
	t.Helper()
	list, err := k.kube.CoreV1().Events(k.ns).List(context.Background(), metav1.ListOptions{
		FieldSelector: "involvedObject.kind=Gateway,involvedObject.name=" + name + ",type=Warning",
	})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range list.Items {
		out = append(out, e.Reason+": "+e.Message)
	}
	return out
}

// envOf is a container's environment as a map, failing on a variable set twice.
func envOf(t *testing.T, c corev1.Container) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, e := range c.Env {
		if _, dup := m[e.Name]; dup {
			t.Errorf("container %s: %s set twice", c.Name, e.Name)
		}
		m[e.Name] = e.Value
	}
	return m
}
