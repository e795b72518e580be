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
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/yaml"

	"github.com/eventgate/eventgate/pkg/testenv"
	"github.com/eventgate/eventgate/pkg/testenv/helmenv"
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

// startChartController installs what the chart (single-namespace mode, into the test's
// namespace) gives the controller: its ServiceAccount, Role, RoleBinding and ConfigMap, and
// runs the real binary as the chart's Deployment runs it (its args and env), with exactly
// the rights of that ServiceAccount.
func (k *kubeTest) startChartController(t *testing.T, set ...string) *controllerProc {
	t.Helper()
	objs := helmenv.Render(t, k.ns, append([]string{"singleNamespace=true"}, set...)...)
	helmenv.Apply(t, k.env.Admin, helmenv.Select(objs, "ServiceAccount", "ConfigMap", "Role", "RoleBinding"))
	var ctr *corev1.Container
	var account string
	for _, o := range helmenv.Select(objs, "Deployment") {
		var d appsv1.Deployment
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &d); err != nil {
			t.Fatal(err)
		}
		if len(d.Spec.Template.Spec.Containers) != 1 {
			t.Fatalf("the chart's controller Deployment has %d containers, want 1", len(d.Spec.Template.Spec.Containers))
		}
		ctr = &d.Spec.Template.Spec.Containers[0]
		account = d.Spec.Template.Spec.ServiceAccountName
	}
	if ctr == nil || account == "" {
		t.Fatal("the chart renders no controller Deployment with a ServiceAccount")
	}
	// The controller reads its ConfigMap once at start: wait until the authorizer knows the
	// chart's Roles.
	as := kubeenv.AsServiceAccount(k.env.Admin, k.ns, account)
	kubeenv.WaitAllowed(t, as, k.ns, "get", "", "configmaps")
	kubeenv.WaitAllowed(t, as, k.ns, "watch", "argoproj.io", "gateways")
	var env []string
	for _, e := range ctr.Env {
		v := e.Value
		if e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.namespace" {
			v = k.ns
		}
		env = append(env, e.Name+"="+v)
	}
	addr := testenv.FreePort(t)
	// The later --metrics-address wins: the pod's port is not free on this machine.
	args := append(append([]string(nil), ctr.Args...), "--kubeconfig", k.env.ServiceAccountKubeconfig(t, k.ns, account), "--metrics-address", addr)
	p := testenv.StartProcess(t, testenv.Binary(t, "services/gateway-controller"), args, env...)
	return &controllerProc{Process: p, metrics: addr}
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

// touchAndWaitReconcile labels the Gateway name, which queues it without changing what it
// asks for, and waits until c completes a reconcile after that.
func (k *kubeTest) touchAndWaitReconcile(t *testing.T, c *controllerProc, name string) {
	t.Helper()
	const done = `eventgate_controller_reconciles_total{result="success"}`
	before := c.metric(done)
	k.patch(t, name, `{"metadata":{"labels":{"touched":"yes"}}}`)
	testenv.Eventually(t, wait, poll, func() error {
		if got := c.metric(done); got == before {
			return fmt.Errorf("reconciles %s, still %s", got, before)
		}
		return nil
	})
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

// waitDeployment waits until the Deployment exists and cond (if any) holds for it.
func (k *kubeTest) waitDeployment(t *testing.T, name string, cond func(*appsv1.Deployment) error) *appsv1.Deployment {
	t.Helper()
	return waitFor(t, func() (*appsv1.Deployment, error) {
		return k.kube.AppsV1().Deployments(k.ns).Get(context.Background(), name, metav1.GetOptions{})
	}, cond)
}

func (k *kubeTest) waitService(t *testing.T, name string, cond func(*corev1.Service) error) *corev1.Service {
	t.Helper()
	return waitFor(t, func() (*corev1.Service, error) {
		return k.kube.CoreV1().Services(k.ns).Get(context.Background(), name, metav1.GetOptions{})
	}, cond)
}

// waitFor waits until get succeeds and cond (if any) holds for what it got.
func waitFor[T any](t *testing.T, get func() (T, error), cond func(T) error) T {
	t.Helper()
	var obj T
	testenv.Eventually(t, wait, poll, func() error {
		var err error
		if obj, err = get(); err != nil {
			return err
		}
		if cond != nil {
			return cond(obj)
		}
		return nil
	})
	return obj
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
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		d, err := k.kube.AppsV1().Deployments(k.ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		d.Status = appsv1.DeploymentStatus{
			ObservedGeneration: d.Generation, Replicas: 1, ReadyReplicas: 1, AvailableReplicas: 1, UpdatedReplicas: 1,
			Conditions: []appsv1.DeploymentCondition{{
				Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue, Reason: "MinimumReplicasAvailable",
				LastUpdateTime: metav1.Now(), LastTransitionTime: metav1.Now(),
			}},
		}
		_, err = k.kube.AppsV1().Deployments(k.ns).UpdateStatus(ctx, d, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
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
