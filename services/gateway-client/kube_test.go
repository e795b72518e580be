package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	"github.com/eventgate/eventgate/pkg/apis/gateway/v1alpha1"
	"github.com/eventgate/eventgate/pkg/dispatch"
	"github.com/eventgate/eventgate/pkg/sensorsink"
	"github.com/eventgate/eventgate/pkg/testenv"
	"github.com/eventgate/eventgate/pkg/testenv/kubeenv"
)

func TestMain(m *testing.M) { os.Exit(kubeenv.Run(m)) }

var (
	rolesGVR        = schema.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "roles"}
	roleBindingsGVR = schema.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "rolebindings"}
)

// kubeTest is a namespace of its own on the shared API server, with the Gateway CRD.
type kubeTest struct {
	env *kubeenv.Env
	dyn dynamic.Interface
	ns  string
}

func newKubeTest(t testing.TB) *kubeTest {
	env := kubeenv.Shared(t)
	env.InstallCRDs(t, "../../deploy/helm/eventgate/crds/argoproj.io_gateways.yaml")
	return &kubeTest{env: env, dyn: kubeenv.Dynamic(t, env.Admin), ns: env.Namespace(t)}
}

// create creates the object of a YAML manifest in the test's namespace.
func (k *kubeTest) create(t testing.TB, gvr schema.GroupVersionResource, manifest string) {
	t.Helper()
	var obj map[string]any
	if err := yaml.Unmarshal([]byte(manifest), &obj); err != nil {
		t.Fatal(err)
	}
	if _, err := k.dyn.Resource(gvr).Namespace(k.ns).Create(context.Background(), &unstructured.Unstructured{Object: obj}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create %s: %v", gvr.Resource, err)
	}
}

func (k *kubeTest) patch(t *testing.T, gvr schema.GroupVersionResource, name, patch string) {
	t.Helper()
	if _, err := k.dyn.Resource(gvr).Namespace(k.ns).Patch(context.Background(), name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatalf("patch %s %s: %v", gvr.Resource, name, err)
	}
}

func (k *kubeTest) gatewayStatus(name string) (v1alpha1.GatewayStatus, error) {
	u, err := k.dyn.Resource(gatewaysGVR).Namespace(k.ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		return v1alpha1.GatewayStatus{}, err
	}
	var gw v1alpha1.Gateway
	err = runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &gw)
	return gw.Status, err
}

// nodes describes the Gateway's status nodes as "name=Phase" in name order, and checks that
// each is keyed by its stable ID.
func (k *kubeTest) nodes(name string) (string, map[string]v1alpha1.NodeStatus, error) {
	st, err := k.gatewayStatus(name)
	if err != nil {
		return "", nil, err
	}
	byName := map[string]v1alpha1.NodeStatus{}
	var out []string
	for id, n := range st.Nodes {
		if id != n.ID {
			return "", nil, fmt.Errorf("node %s has id %s", id, n.ID)
		}
		if n.ID == v1alpha1.NodeID(name, n.Name) {
			byName[n.Name] = n
		}
		out = append(out, n.Name+"="+string(n.Phase))
	}
	sort.Strings(out)
	return strings.Join(out, " "), byName, nil
}

// grant binds the test user to exactly the rules the README lists for the client, so the
// client runs with no more rights than a pod would have.
func (k *kubeTest) grant(t *testing.T, gatewayVerbs ...string) *rest.Config {
	t.Helper()
	k.create(t, rolesGVR, clientRole(gatewayVerbs...))
	k.create(t, roleBindingsGVR, fmt.Sprintf(`apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: gateway-client}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: gateway-client}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: %s}
`, k.env.UserName))
	for _, verb := range gatewayVerbs {
		kubeenv.WaitAllowed(t, k.env.User, k.ns, verb, "argoproj.io", "gateways")
	}
	kubeenv.WaitAllowed(t, k.env.User, k.ns, "watch", "", "configmaps")
	return k.env.User
}

// clientRole is the README's Role for the client, with the given verbs on gateways (none:
// the rule for ConfigMaps only, for a namespace that holds only the ConfigMap).
func clientRole(gatewayVerbs ...string) string {
	role := "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {name: gateway-client}\nrules:\n"
	if len(gatewayVerbs) > 0 {
		role += fmt.Sprintf("- apiGroups: [argoproj.io]\n  resources: [gateways]\n  verbs: [%s]\n", strings.Join(gatewayVerbs, ", "))
	}
	return role + "- apiGroups: [\"\"]\n  resources: [configmaps]\n  verbs: [list, watch]\n"
}

func eventSourcesManifest(sources map[string]string) string {
	m := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: every-event-source\ndata:\n"
	for k, v := range sources {
		m += fmt.Sprintf("  %s: %q\n", k, v)
	}
	return m
}

// startKube runs the client in Kubernetes mode until the test ends; the returned channel
// gives runKube's result.
func startKube(t *testing.T, cfg clientConfig, rc *rest.Config) (stop func() error) {
	return startKubeLogging(t, cfg, rc, testenv.Logger(t))
}

// startKubeCapturingLogs is startKube with the client's log, text at level INFO, in the
// returned buffer.
func startKubeCapturingLogs(t *testing.T, cfg clientConfig, rc *rest.Config) *testenv.SyncBuffer {
	var logs testenv.SyncBuffer
	startKubeLogging(t, cfg, rc, slog.New(slog.NewTextHandler(&logs, nil)))
	return &logs
}

// everyGatewayConfig is the client's configuration for the test's every-gateway: its
// gateway server at gwAddr, its sensor every-sensor at sensorURL, no metrics server.
func (k *kubeTest) everyGatewayConfig(t *testing.T, gwAddr, sensorURL string) clientConfig {
	t.Helper()
	cfg, err := parseFlags([]string{"--gateway-name", "every-gateway", "--namespace", k.ns, "--server", gwAddr,
		"--sensor", "every-sensor=" + sensorURL, "--metrics-address", ""}, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func startKubeLogging(t *testing.T, cfg clientConfig, rc *rest.Config, log *slog.Logger) (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runKube(ctx, cfg, rc, log) }()
	var result error
	stopped := false
	stop = func() error {
		if !stopped {
			stopped = true
			cancel()
			result = <-done
		}
		return result
	}
	t.Cleanup(func() { stop() })
	return stop
}

func TestKubernetesModeFollowsTheConfigMap(t *testing.T) {
	k := newKubeTest(t)
	gw := testenv.StartGateway(t, everyGateway{})
	sensor := testenv.StartSensor(t, sensorsink.Endpoints{})
	k.create(t, gatewaysGVR, gatewayManifest)
	// A node left by an earlier run of the client, for a source that is gone since.
	k.patch(t, gatewaysGVR, "every-gateway", `{"status":{"nodes":{"every-gateway-1":{"id":"every-gateway-1","name":"gone","displayName":"gone","phase":"Running"}}}}`)
	k.create(t, configMapsGVR, eventSourcesManifest(map[string]string{"a": "every: 5ms", "garbage": "every: [oops"}))

	cfg := k.everyGatewayConfig(t, gw.Addr, sensor.URL)
	cfg.restartBackoff = dispatch.Backoff{Initial: 10 * time.Millisecond, Max: 200 * time.Millisecond, Factor: 2}
	stop := startKube(t, cfg, k.grant(t, "get", "patch"))

	waitNodes := func(want string, check func(map[string]v1alpha1.NodeStatus) error) {
		t.Helper()
		testenv.Eventually(t, 20*time.Second, 20*time.Millisecond, func() error {
			got, byName, err := k.nodes("every-gateway")
			if err != nil {
				return err
			}
			if got != want {
				return fmt.Errorf("nodes %q, want %q", got, want)
			}
			if check != nil {
				return check(byName)
			}
			return nil
		})
	}
	waitEvents := func(source string, n int) {
		t.Helper()
		testenv.Eventually(t, 20*time.Second, 10*time.Millisecond, func() error {
			if got := countBySubject(sensor)[source]; got < n {
				return fmt.Errorf("%d events from %s, want %d", got, source, n)
			}
			return nil
		})
	}

	// The good source runs; the garbage one is an Error node with the server's reason; the
	// earlier run's node is gone.
	waitNodes("a=Running garbage=Error", func(nodes map[string]v1alpha1.NodeStatus) error {
		a, g := nodes["a"], nodes["garbage"]
		if a.StartedAt.IsZero() || a.UpdateTime.IsZero() || !strings.HasPrefix(a.Message, "running on ") {
			return fmt.Errorf("node a: %+v", a)
		}
		if !strings.HasPrefix(g.Message, "invalid: every: invalid configuration: yaml: ") {
			return fmt.Errorf("node garbage: %+v, want the server's reason", g)
		}
		return nil
	})
	waitEvents("a", 5)

	// A key added: it starts.
	k.patch(t, configMapsGVR, "every-event-source", `{"data":{"b":"every: 5ms"}}`)
	waitNodes("a=Running b=Running garbage=Error", nil)
	waitEvents("b", 5)

	// A key deleted: its node goes and its events stop.
	k.patch(t, configMapsGVR, "every-event-source", `{"data":{"a":null}}`)
	waitNodes("b=Running garbage=Error", nil)
	before := countBySubject(sensor)["a"]
	waitEvents("b", countBySubject(sensor)["b"]+20)
	if after := countBySubject(sensor)["a"]; after > before+2 {
		t.Errorf("a still delivering after its key was deleted: %d -> %d", before, after)
	}

	// The ConfigMap deleted: every node goes.
	if err := k.dyn.Resource(configMapsGVR).Namespace(k.ns).Delete(context.Background(), "every-event-source", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitNodes("", nil)
	if err := stop(); err != nil {
		t.Errorf("runKube: %v", err)
	}
}

// spec.eventSource may name a ConfigMap in another namespace, where the client needs only
// list and watch on ConfigMaps.
func TestKubernetesModeReadsAConfigMapOfAnotherNamespace(t *testing.T) {
	k := newKubeTest(t)
	other := &kubeTest{env: k.env, dyn: k.dyn, ns: k.env.Namespace(t)}
	gw := testenv.StartGateway(t, everyGateway{})
	sensor := testenv.StartSensor(t, sensorsink.Endpoints{})
	k.create(t, gatewaysGVR, strings.Replace(gatewayManifest, "eventSource: every-event-source", "eventSource: "+other.ns+"/every-event-source", 1))
	other.create(t, configMapsGVR, eventSourcesManifest(map[string]string{"a": "every: 5ms"}))
	rc := k.grant(t, "get", "patch")
	other.grant(t) // configmaps only
	cfg := k.everyGatewayConfig(t, gw.Addr, sensor.URL)
	startKube(t, cfg, rc)
	testenv.Eventually(t, 20*time.Second, 20*time.Millisecond, func() error {
		got, _, err := k.nodes("every-gateway")
		if err == nil && (got != "a=Running" || countBySubject(sensor)["a"] < 5) {
			err = fmt.Errorf("nodes %q, %d events from a", got, countBySubject(sensor)["a"])
		}
		return err
	})
}

// A status write that fails (here: the client may not patch the Gateway yet) is retried
// until it succeeds.
func TestKubernetesModeRetriesAFailedStatusWrite(t *testing.T) {
	k := newKubeTest(t)
	gw := testenv.StartGateway(t, everyGateway{})
	sensor := testenv.StartSensor(t, sensorsink.Endpoints{})
	k.create(t, gatewaysGVR, gatewayManifest)
	k.create(t, configMapsGVR, eventSourcesManifest(map[string]string{"a": "every: 5ms"}))
	rc := k.grant(t, "get")
	cfg := k.everyGatewayConfig(t, gw.Addr, sensor.URL)
	logs := startKubeCapturingLogs(t, cfg, rc)
	testenv.Eventually(t, 20*time.Second, 20*time.Millisecond, func() error {
		if !strings.Contains(logs.String(), "Gateway status nodes not written: retrying") {
			return fmt.Errorf("no failed write yet; log:\n%s", logs.String())
		}
		return nil
	})
	if _, _, err := k.nodes("every-gateway"); err != nil {
		t.Fatal(err)
	}
	k.patch(t, rolesGVR, "gateway-client", roleRules(t, clientRole("get", "patch")))
	testenv.Eventually(t, 30*time.Second, 20*time.Millisecond, func() error {
		got, _, err := k.nodes("every-gateway")
		if err == nil && got != "a=Running" {
			err = fmt.Errorf("nodes %q, want a=Running", got)
		}
		return err
	})
}

func TestKubernetesModeRefusesAGatewayWithoutWatchers(t *testing.T) {
	k := newKubeTest(t)
	k.create(t, gatewaysGVR, strings.Replace(gatewayManifest, "  watchers:\n    sensors:\n      - name: every-sensor\n", "", 1))
	cfg, err := parseFlags([]string{"--gateway-name", "every-gateway", "--namespace", k.ns, "--metrics-address", ""}, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err = runKube(ctx, cfg, k.grant(t, "get", "patch"), testenv.Logger(t))
	want := "Gateway " + k.ns + "/every-gateway cannot run: spec.watchers: required"
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("runKube = %v, want %q...", err, want)
	}
	st, err2 := k.gatewayStatus("every-gateway")
	if err2 != nil {
		t.Fatal(err2)
	}
	if st.Phase != v1alpha1.NodePhaseError || st.Message != "gateway-client: "+err.Error() {
		t.Errorf("status %s %q, want Error with %q", st.Phase, st.Message, err)
	}
}

// The whole command line, kubeconfig file included: a missing Gateway is named.
func TestKubernetesModeNamesAMissingGateway(t *testing.T) {
	k := newKubeTest(t)
	err := run(context.Background(), []string{"--kubeconfig", k.env.AdminKubeconfig, "--gateway-name", "nope", "--namespace", k.ns, "--metrics-address", ""}, testenv.Logger(t))
	if want := "Gateway " + k.ns + "/nope not found"; err == nil || err.Error() != want {
		t.Fatalf("run = %v, want %q", err, want)
	}
}

// RBAC that refuses the event-source ConfigMap: the client says so in its log and in the
// Gateway's status, and keeps waiting; once RBAC allows it, the sources run and the Error
// goes.
func TestKubernetesModeReportsAForbiddenConfigMap(t *testing.T) {
	k := newKubeTest(t)
	gw := testenv.StartGateway(t, everyGateway{})
	sensor := testenv.StartSensor(t, sensorsink.Endpoints{})
	k.create(t, gatewaysGVR, gatewayManifest)
	k.create(t, configMapsGVR, eventSourcesManifest(map[string]string{"a": "every: 5ms"}))
	rc := k.grantGatewaysOnly(t)
	cfg := k.everyGatewayConfig(t, gw.Addr, sensor.URL)
	logs := startKubeCapturingLogs(t, cfg, rc)

	source := k.ns + "/every-event-source"
	testenv.Eventually(t, 20*time.Second, 20*time.Millisecond, func() error {
		st, err := k.gatewayStatus("every-gateway")
		if err != nil {
			return err
		}
		if st.Phase != v1alpha1.NodePhaseError || !strings.HasPrefix(st.Message, "gateway-client: ") ||
			!strings.Contains(st.Message, source) || !strings.Contains(st.Message, "forbidden") {
			return fmt.Errorf("status %s %q, want Error naming %s and the refusal", st.Phase, st.Message, source)
		}
		return nil
	})
	const refused = "event-source ConfigMap not readable"
	testenv.WaitLogged(t, logs, refused, 1, 20*time.Second)
	if line := logLine(logs.String(), refused); !strings.Contains(line, "level=ERROR") || !strings.Contains(line, "configMap="+source) || !strings.Contains(line, "forbidden") {
		t.Errorf("log line %q, want an ERROR naming %s and the refusal", line, source)
	}

	// RBAC fixed: the informer's next attempt lists and watches.
	k.patch(t, rolesGVR, "gateway-client", roleRules(t, clientRole("get", "patch")))
	testenv.Eventually(t, 60*time.Second, 20*time.Millisecond, func() error {
		got, _, err := k.nodes("every-gateway")
		if err != nil {
			return err
		}
		st, err := k.gatewayStatus("every-gateway")
		if err != nil {
			return err
		}
		if got != "a=Running" || st.Phase != "" || st.Message != "" {
			return fmt.Errorf("nodes %q, status %s %q; want a=Running and the Error gone", got, st.Phase, st.Message)
		}
		return nil
	})
	if !strings.Contains(logs.String(), "gateway-client running") {
		t.Errorf("no start-up line once allowed; log:\n%s", logs.String())
	}
	// The same refusal, retried by client-go on backoff, is logged once a minute at most.
	if n := strings.Count(logs.String(), refused); n != 1 {
		t.Errorf("the refusal was logged %d times, want once; log:\n%s", n, logs.String())
	}
}

// grantGatewaysOnly binds the test user to a Role without the README's rule for ConfigMaps.
func (k *kubeTest) grantGatewaysOnly(t *testing.T) *rest.Config {
	t.Helper()
	role := strings.TrimSuffix(clientRole("get", "patch"), "- apiGroups: [\"\"]\n  resources: [configmaps]\n  verbs: [list, watch]\n")
	k.create(t, rolesGVR, role)
	k.create(t, roleBindingsGVR, fmt.Sprintf("apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {name: gateway-client}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: gateway-client}\nsubjects:\n- {apiGroup: rbac.authorization.k8s.io, kind: User, name: %s}\n", k.env.UserName))
	kubeenv.WaitAllowed(t, k.env.User, k.ns, "patch", "argoproj.io", "gateways")
	return k.env.User
}

// roleRules is a merge patch that sets a Role's rules to those of manifest.
func roleRules(t *testing.T, manifest string) string {
	t.Helper()
	var role map[string]any
	if err := yaml.Unmarshal([]byte(manifest), &role); err != nil {
		t.Fatal(err)
	}
	rules, _ := json.Marshal(map[string]any{"rules": role["rules"]})
	return string(rules)
}

// logLine is the first line of logs that contains s.
func logLine(logs, s string) string {
	for _, line := range strings.Split(logs, "\n") {
		if strings.Contains(line, s) {
			return line
		}
	}
	return ""
}

// A failure is logged when its reason changes, and again once a minute while it lasts.
func TestConfigMapAccessThrottlesTheLog(t *testing.T) {
	now := time.Unix(1000, 0)
	a := newConfigMapAccess(nil, "gw", "ns/gw", "ns/cm", testenv.Logger(t))
	a.now = func() time.Time { return now }
	forbidden := errors.New("configmaps is forbidden")
	steps := []struct {
		after time.Duration
		err   error
		want  bool
	}{
		{0, forbidden, true},
		{time.Second, forbidden, false},
		{time.Second, errors.New("connection refused"), true},
		{time.Second, forbidden, true},
		{reportEvery - time.Second, forbidden, false},
		{time.Second, forbidden, true},
	}
	for i, s := range steps {
		now = now.Add(s.after)
		if got := a.shouldLog(s.err); got != s.want {
			t.Errorf("step %d (%v after %v): shouldLog = %v, want %v", i, s.err, s.after, got, s.want)
		}
	}
}

// Someone replaces the Gateway without its status (`kubectl replace -f`, or an edit): the CRD
// has no status subresource, so the nodes go. The client writes them again within its resync
// period, though no source changed.
func TestKubernetesModeRewritesNodesRemovedByOthers(t *testing.T) {
	k := newKubeTest(t)
	gw := testenv.StartGateway(t, everyGateway{})
	sensor := testenv.StartSensor(t, sensorsink.Endpoints{})
	k.create(t, gatewaysGVR, gatewayManifest)
	k.create(t, configMapsGVR, eventSourcesManifest(map[string]string{"a": "every: 5ms"}))
	cfg := k.everyGatewayConfig(t, gw.Addr, sensor.URL)
	cfg.statusResync = 200 * time.Millisecond
	startKube(t, cfg, k.grant(t, "get", "patch"))
	waitNodes := func(limit time.Duration) {
		t.Helper()
		testenv.Eventually(t, limit, 20*time.Millisecond, func() error {
			got, _, err := k.nodes("every-gateway")
			if err == nil && got != "a=Running" {
				err = fmt.Errorf("nodes %q, want a=Running", got)
			}
			return err
		})
	}
	waitNodes(20 * time.Second)

	gws := k.dyn.Resource(gatewaysGVR).Namespace(k.ns)
	u, err := gws.Get(context.Background(), "every-gateway", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	unstructured.RemoveNestedField(u.Object, "status")
	replaced, err := gws.Update(context.Background(), u, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if nodes, _, _ := unstructured.NestedMap(replaced.Object, "status", "nodes"); len(nodes) != 0 {
		t.Fatalf("the update kept the nodes %v: nothing to test", nodes)
	}
	// A few resync periods, with room for a loaded machine.
	waitNodes(5 * time.Second)
}
