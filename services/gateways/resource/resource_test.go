package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	"github.com/eventgate/eventgate/pkg/sensorsink"
	"github.com/eventgate/eventgate/pkg/testenv"
	"github.com/eventgate/eventgate/pkg/testenv/kubeenv"
	"github.com/eventgate/eventgate/protos/gateways"
)

func TestMain(m *testing.M) { os.Exit(kubeenv.Run(m)) }

var (
	configMaps = schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}
	widgets    = schema.GroupVersionResource{Group: "eventgate.test", Version: "v1", Resource: "widgets"}
)

// received is a payload as a client decodes it.
type received struct {
	Type      string         `json:"type"`
	Object    map[string]any `json:"object"`
	OldObject map[string]any `json:"oldObject"`
	Group     string         `json:"group"`
	Version   string         `json:"version"`
	Resource  string         `json:"resource"`
	Kind      string         `json:"kind"`
	Namespace string         `json:"namespace"`
	Name      string         `json:"name"`
}

func (r received) String() string { return r.Type + " " + r.Namespace + "/" + r.Name }

// harness is a gateway server whose sources talk to the API server as cfg.
type harness struct {
	gw       *gateway
	server   *testenv.Gateway
	watching chan string
}

func start(t testing.TB, cfg *rest.Config) *harness {
	t.Helper()
	h := &harness{gw: newGateway(), watching: make(chan string, 16)}
	h.gw.restConfig = func() (*rest.Config, error) { return cfg, nil }
	h.gw.watching = func(name string) { h.watching <- name }
	h.server = testenv.StartGateway(t, h.gw)
	return h
}

// startViaProxy is start with the API server of cfg reached through a proxy the test can
// cut and restore.
func startViaProxy(t testing.TB, cfg *rest.Config) (*harness, *testenv.Proxy) {
	t.Helper()
	proxy := testenv.StartProxy(t, strings.TrimPrefix(cfg.Host, "https://"))
	viaProxy := rest.CopyConfig(cfg)
	viaProxy.Host = "https://" + proxy.Addr
	return start(t, viaProxy), proxy
}

// open starts a source and waits until it watches.
func (h *harness) open(t testing.TB, name, data string) *testenv.Stream {
	t.Helper()
	s := testenv.OpenBufferedStream(t, h.server.Client, &gateways.EventSource{Name: name, Data: data}, 1024)
	select {
	case got := <-h.watching:
		if got != name {
			t.Fatalf("source %q watches, want %q", got, name)
		}
	case <-time.After(30 * time.Second):
		_, err := s.TryNext(time.Millisecond)
		t.Fatalf("source %q not watching after 30s: %v", name, err)
	}
	return s
}

// expect reads the next events and fails unless they are want ("ADDED ns/name"), in
// order, with nothing after them.
func expect(t *testing.T, s *testenv.Stream, want ...string) []received {
	t.Helper()
	var got []received
	for i := range want {
		ev := s.Next(t, 15*time.Second)
		r := testenv.DecodeJSON[received](t, ev)
		if r.String() != want[i] {
			t.Fatalf("event %d = %s, want %s (before it: %v)", i, r, want[i], got)
		}
		if key := r.Namespace + "/" + r.Name; ev.GetOrderingKey() != key {
			t.Errorf("event %d: ordering key %q, want the object's %q", i, ev.GetOrderingKey(), key)
		}
		got = append(got, r)
	}
	// Anything else would be on its way by now: events arrive within milliseconds.
	if ev, err := s.TryNext(500 * time.Millisecond); err == nil {
		t.Fatalf("unexpected event after %v: %s", want, ev.GetPayload())
	}
	return got
}

func objects(t testing.TB, cfg *rest.Config, gvr schema.GroupVersionResource, ns string) dynamic.ResourceInterface {
	return kubeenv.Dynamic(t, cfg).Resource(gvr).Namespace(ns)
}

func configMap(name string, labels, annotations map[string]any, data map[string]any) *unstructured.Unstructured {
	md := map[string]any{"name": name}
	if labels != nil {
		md["labels"] = labels
	}
	if annotations != nil {
		md["annotations"] = annotations
	}
	return &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "metadata": md, "data": data}}
}

func create(t *testing.T, c dynamic.ResourceInterface, obj *unstructured.Unstructured) *unstructured.Unstructured {
	t.Helper()
	got, err := c.Create(context.Background(), obj, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create %s: %v", obj.GetName(), err)
	}
	return got
}

func patch(t *testing.T, c dynamic.ResourceInterface, name, data string) {
	t.Helper()
	if _, err := c.Patch(context.Background(), name, "application/merge-patch+json", []byte(data), metav1.PatchOptions{}); err != nil {
		t.Fatalf("patch %s: %v", name, err)
	}
}

func remove(t *testing.T, c dynamic.ResourceInterface, name string) {
	t.Helper()
	if err := c.Delete(context.Background(), name, metav1.DeleteOptions{}); err != nil {
		t.Fatalf("delete %s: %v", name, err)
	}
}

func TestConfigMapEvents(t *testing.T) {
	env := kubeenv.Shared(t)
	ns := env.Namespace(t)
	h := start(t, env.Admin)
	s := h.open(t, "cms", fmt.Sprintf("namespace: %s\nversion: v1\nkind: ConfigMap", ns))
	cms := objects(t, env.Admin, configMaps, ns)

	create(t, cms, configMap("app", nil, nil, map[string]any{"k": "one"}))
	patch(t, cms, "app", `{"data":{"k":"two"}}`)
	remove(t, cms, "app")
	got := expect(t, s, "ADDED "+ns+"/app", "MODIFIED "+ns+"/app", "DELETED "+ns+"/app")

	for _, r := range got {
		if r.Group != "" || r.Version != "v1" || r.Resource != "configmaps" || r.Kind != "ConfigMap" {
			t.Errorf("%s: group %q version %q resource %q kind %q", r, r.Group, r.Version, r.Resource, r.Kind)
		}
	}
	data := func(obj map[string]any) any { d, _ := obj["data"].(map[string]any); return d["k"] }
	if v := data(got[0].Object); v != "one" || got[0].OldObject != nil {
		t.Errorf("ADDED: object data.k %v, oldObject %v", v, got[0].OldObject)
	}
	if v, old := data(got[1].Object), data(got[1].OldObject); v != "two" || old != "one" {
		t.Errorf("MODIFIED: object data.k %v, oldObject data.k %v; want two, one", v, old)
	}
	if v := data(got[2].Object); v != "two" {
		t.Errorf("DELETED: object data.k %v, want two", v)
	}
}

func TestFilters(t *testing.T) {
	env := kubeenv.Shared(t)
	h := start(t, env.Admin)
	tests := []struct {
		name   string
		source string // the source's lines after namespace, version and kind
		// act makes the changes; the events must be want, in order.
		act  func(t *testing.T, c dynamic.ResourceInterface)
		want []string // "TYPE name"
		// nextSecond starts the source only in the second after "existing" was created:
		// creation times have whole seconds.
		nextSecond bool
	}{
		{
			name: "prefix", source: "filter: {prefix: keep-}",
			act: func(t *testing.T, c dynamic.ResourceInterface) {
				create(t, c, configMap("drop-1", nil, nil, nil))
				create(t, c, configMap("keep-1", nil, nil, nil))
			},
			want: []string{"ADDED keep-1"},
		},
		{
			name: "labels, exact", source: "filter: {labels: {app: web, tier: front}}",
			act: func(t *testing.T, c dynamic.ResourceInterface) {
				create(t, c, configMap("one-label", map[string]any{"app": "web"}, nil, nil))
				create(t, c, configMap("other-value", map[string]any{"app": "web", "tier": "back"}, nil, nil))
				create(t, c, configMap("both", map[string]any{"app": "web", "tier": "front", "x": "y"}, nil, nil))
			},
			want: []string{"ADDED both"},
		},
		{
			name: "label selector expression", source: "filter: {labelSelector: 'app in (web, api), !canary'}",
			act: func(t *testing.T, c dynamic.ResourceInterface) {
				create(t, c, configMap("canary", map[string]any{"app": "web", "canary": "1"}, nil, nil))
				create(t, c, configMap("db", map[string]any{"app": "db"}, nil, nil))
				create(t, c, configMap("api", map[string]any{"app": "api"}, nil, nil))
			},
			want: []string{"ADDED api"},
		},
		{
			name: "annotations, exact", source: "filter: {annotations: {owner: team-a}}",
			act: func(t *testing.T, c dynamic.ResourceInterface) {
				create(t, c, configMap("b", nil, map[string]any{"owner": "team-b"}, nil))
				create(t, c, configMap("none", nil, nil, nil))
				create(t, c, configMap("a", nil, map[string]any{"owner": "team-a", "other": "x"}, nil))
			},
			want: []string{"ADDED a"},
		},
		{
			name: "createdBy in the past passes nothing new", source: "filter: {createdBy: '2019-01-01T00:00:00Z'}",
			act: func(t *testing.T, c dynamic.ResourceInterface) {
				create(t, c, configMap("new", nil, nil, nil))
			},
		},
		{
			name: "createdBy in the future passes", source: "filter: {createdBy: '2100-01-01T00:00:00Z'}",
			act: func(t *testing.T, c dynamic.ResourceInterface) {
				create(t, c, configMap("new", nil, nil, nil))
			},
			want: []string{"ADDED new"},
		},
		{
			name: "afterStart drops objects that existed", source: "filter: {afterStart: true}", nextSecond: true,
			act: func(t *testing.T, c dynamic.ResourceInterface) {
				patch(t, c, "existing", `{"data":{"a":"b"}}`)
				create(t, c, configMap("new", nil, nil, nil))
				patch(t, c, "new", `{"data":{"a":"b"}}`)
			},
			want: []string{"ADDED new", "MODIFIED new"},
		},
		{
			name: "v0.10 type", source: "type: DELETED",
			act: func(t *testing.T, c dynamic.ResourceInterface) {
				create(t, c, configMap("x", nil, nil, nil))
				patch(t, c, "x", `{"data":{"a":"b"}}`)
				remove(t, c, "x")
			},
			want: []string{"DELETED x"},
		},
		{
			name: "v1 eventTypes", source: "eventTypes: [ADD, UPDATE]",
			act: func(t *testing.T, c dynamic.ResourceInterface) {
				create(t, c, configMap("x", nil, nil, nil))
				patch(t, c, "x", `{"data":{"a":"b"}}`)
				remove(t, c, "x")
			},
			want: []string{"ADDED x", "MODIFIED x"},
		},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ns := env.Namespace(t)
			c := objects(t, env.Admin, configMaps, ns)
			existing := create(t, c, configMap("existing", nil, nil, nil))
			if tc.nextSecond {
				testenv.Eventually(t, 3*time.Second, 10*time.Millisecond, func() error {
					if !time.Now().Truncate(time.Second).After(existing.GetCreationTimestamp().Time) {
						return fmt.Errorf("still the second of the creation")
					}
					return nil
				})
			}
			name := fmt.Sprintf("filter-%d", i)
			s := h.open(t, name, fmt.Sprintf("namespace: %s\nversion: v1\nkind: ConfigMap\n%s", ns, tc.source))
			tc.act(t, c)
			want := make([]string, len(tc.want))
			for i, w := range tc.want {
				typ, name, _ := strings.Cut(w, " ")
				want[i] = typ + " " + ns + "/" + name
			}
			expect(t, s, want...)
		})
	}
}

func TestAllNamespaces(t *testing.T) {
	env := kubeenv.Shared(t)
	h := start(t, env.Admin)
	s := h.open(t, "everywhere", "version: v1\nkind: ConfigMap\nfilter: {prefix: everywhere-}")
	a, b := env.Namespace(t), env.Namespace(t)
	create(t, objects(t, env.Admin, configMaps, a), configMap("everywhere-a", nil, nil, nil))
	create(t, objects(t, env.Admin, configMaps, b), configMap("everywhere-b", nil, nil, nil))
	expect(t, s, "ADDED "+a+"/everywhere-a", "ADDED "+b+"/everywhere-b")
}

// A (re)start replays nothing by default; includeExisting reports what exists, once.
func TestIncludeExisting(t *testing.T) {
	env := kubeenv.Shared(t)
	h := start(t, env.Admin)
	ns := env.Namespace(t)
	c := objects(t, env.Admin, configMaps, ns)
	create(t, c, configMap("old-1", nil, nil, nil))
	create(t, c, configMap("old-2", nil, nil, nil))
	base := fmt.Sprintf("namespace: %s\nversion: v1\nkind: ConfigMap\nfilter: {prefix: old-}", ns)

	// Two sources on one informer: the second joins it after its initial list.
	off := h.open(t, "off", base)
	on := h.open(t, "on", base+"\nincludeExisting: true")
	got := map[string]bool{}
	for range 2 {
		got[testenv.NextJSON[received](t, on, 15*time.Second).String()] = true
	}
	if !got["ADDED "+ns+"/old-1"] || !got["ADDED "+ns+"/old-2"] {
		t.Fatalf("includeExisting: got %v, want ADDED for old-1 and old-2", got)
	}
	if n := len(h.gw.watches); n != 1 {
		t.Errorf("%d informers for two sources of one resource and namespace, want 1", n)
	}
	patch(t, c, "old-1", `{"data":{"a":"b"}}`)
	expect(t, off, "MODIFIED "+ns+"/old-1")
	expect(t, on, "MODIFIED "+ns+"/old-1")

	// A restart of the source replays nothing.
	off.Close()
	off = h.open(t, "off", base)
	patch(t, c, "old-2", `{"data":{"a":"b"}}`)
	expect(t, off, "MODIFIED "+ns+"/old-2")

	off.Close()
	on.Close()
	testenv.Eventually(t, 10*time.Second, 10*time.Millisecond, func() error {
		h.gw.mu.Lock()
		defer h.gw.mu.Unlock()
		if n := len(h.gw.watches); n != 0 {
			return fmt.Errorf("%d informers left after every source stopped", n)
		}
		return nil
	})
}

const widgetCRD = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.eventgate.test
spec:
  group: eventgate.test
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, listKind: WidgetList}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
`

// A custom resource's objects, by kind and by resource; the kind is unknown to the
// gateway's discovery cache until the CRD exists (installed after the gateway's first
// lookups), and an unknown kind is an error, not a crash.
func TestCustomResources(t *testing.T) {
	env := kubeenv.Shared(t)
	h := start(t, env.Admin)
	ns := env.Namespace(t)
	// Fill the discovery cache before the CRD exists.
	_ = h.open(t, "warm", fmt.Sprintf("namespace: %s\nversion: v1\nkind: ConfigMap", ns))

	unknown := testenv.OpenStream(t, h.server.Client, &gateways.EventSource{Name: "nope", Data: "group: eventgate.test\nversion: v1\nkind: Gadget\nbackoff: {duration: 10ms}"})
	if _, err := unknown.TryNext(30 * time.Second); err == nil || !strings.Contains(err.Error(), "unknown kind Gadget in eventgate.test/v1") {
		t.Fatalf("unknown kind: %v, want the stream to end with the reason", err)
	}

	file := filepath.Join(t.TempDir(), "crd.yaml")
	if err := os.WriteFile(file, []byte(widgetCRD), 0o644); err != nil {
		t.Fatal(err)
	}
	env.InstallCRDs(t, file)
	byKind := h.open(t, "by-kind", fmt.Sprintf("namespace: %s\ngroup: eventgate.test\nversion: v1\nkind: Widget", ns))
	byResource := h.open(t, "by-resource", fmt.Sprintf("namespace: %s\ngroup: eventgate.test\nversion: v1\nresource: widgets", ns))
	c := objects(t, env.Admin, widgets, ns)
	create(t, c, &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "eventgate.test/v1", "kind": "Widget", "metadata": map[string]any{"name": "w1"}, "spec": map[string]any{"size": int64(3)},
	}})
	remove(t, c, "w1")
	for _, s := range []*testenv.Stream{byKind, byResource} {
		got := expect(t, s, "ADDED "+ns+"/w1", "DELETED "+ns+"/w1")
		if r := got[0]; r.Kind != "Widget" || r.Resource != "widgets" || r.Group != "eventgate.test" {
			t.Errorf("kind %q resource %q group %q", r.Kind, r.Resource, r.Group)
		}
		if spec, _ := got[0].Object["spec"].(map[string]any); spec["size"] != float64(3) {
			t.Errorf("object spec %v, want size 3 as JSON", got[0].Object["spec"])
		}
	}
}

// The gateway's connection to the API server is cut mid-stream; meanwhile objects change,
// are deleted and created, and etcd's history is compacted, so the informer cannot resume
// its watch and must list again. Each change is reported once, unchanged objects not at
// all, and the delete that happened during the break comes from the informer's tombstone.
func TestWatchBrokenMidStream(t *testing.T) {
	env := kubeenv.Shared(t)
	h, proxy := startViaProxy(t, env.Admin)
	ns := env.Namespace(t)
	c := objects(t, env.Admin, configMaps, ns)
	for _, name := range []string{"same", "changed", "deleted"} {
		create(t, c, configMap(name, nil, nil, nil))
	}
	s := h.open(t, "break", fmt.Sprintf("namespace: %s\nversion: v1\nkind: ConfigMap", ns))
	patch(t, c, "changed", `{"data":{"before":"cut"}}`)
	expect(t, s, "MODIFIED "+ns+"/changed")

	proxy.Cut()
	patch(t, c, "changed", `{"data":{"during":"cut"}}`)
	remove(t, c, "deleted")
	create(t, c, configMap("created", nil, nil, nil))
	env.CompactEtcd(t)
	proxy.Restore()

	got := map[string]received{}
	for range 3 {
		r := testenv.NextJSON[received](t, s, 60*time.Second)
		if _, dup := got[r.String()]; dup {
			t.Fatalf("%s reported twice", r)
		}
		got[r.String()] = r
	}
	for _, want := range []string{"MODIFIED " + ns + "/changed", "DELETED " + ns + "/deleted", "ADDED " + ns + "/created"} {
		if _, ok := got[want]; !ok {
			t.Errorf("missing %s; got %v", want, got)
		}
	}
	if r := got["MODIFIED "+ns+"/changed"]; r.OldObject == nil {
		t.Errorf("MODIFIED after the relist without oldObject")
	}
	expect(t, s) // nothing else: "same" did not change
	// And the watch goes on.
	patch(t, c, "same", `{"data":{"after":"restore"}}`)
	expect(t, s, "MODIFIED "+ns+"/same")
}

// An object deleted and created again under one name while the watch is broken: the
// relist finds another object (another uid) under the name. That is a delete and a create,
// each reported as itself, also to the sources that want only one of the two; not one
// MODIFIED spanning two objects.
func TestRecreatedDuringBreak(t *testing.T) {
	env := kubeenv.Shared(t)
	h, proxy := startViaProxy(t, env.Admin)
	ns := env.Namespace(t)
	c := objects(t, env.Admin, configMaps, ns)
	first := create(t, c, configMap("x", nil, nil, map[string]any{"gen": "1"}))
	src := fmt.Sprintf("namespace: %s\nversion: v1\nkind: ConfigMap", ns)
	all := h.open(t, "all", src)
	dels := h.open(t, "dels", src+"\neventTypes: [DELETE]")
	adds := h.open(t, "adds", src+"\neventTypes: [ADD]")

	proxy.Cut()
	remove(t, c, "x")
	second := create(t, c, configMap("x", nil, nil, map[string]any{"gen": "2"}))
	env.CompactEtcd(t)
	proxy.Restore()

	// The first event comes after the informer's backoff; the others right after it.
	if r := testenv.NextJSON[received](t, dels, 60*time.Second); r.String() != "DELETED "+ns+"/x" || uid(r.Object) != string(first.GetUID()) {
		t.Fatalf("DELETE source: %s of uid %s, want DELETED %s/x of uid %s", r, uid(r.Object), ns, first.GetUID())
	}
	expect(t, dels)
	got := expect(t, all, "DELETED "+ns+"/x", "ADDED "+ns+"/x")
	got = append(got, expect(t, adds, "ADDED "+ns+"/x")...)
	for i, want := range []string{string(first.GetUID()), string(second.GetUID()), string(second.GetUID())} {
		if r := got[i]; uid(r.Object) != want || r.OldObject != nil {
			t.Errorf("%s: uid %s, oldObject %v; want uid %s and no oldObject", r, uid(r.Object), r.OldObject, want)
		}
	}
}

// uid is the uid of an object as a client decodes it.
func uid(obj map[string]any) string {
	md, _ := obj["metadata"].(map[string]any)
	u, _ := md["uid"].(string)
	return u
}

// The API server itself restarts (same etcd, same address): the source goes on, replays
// nothing, and reports the next change once.
func TestAPIServerRestart(t *testing.T) {
	env := kubeenv.Shared(t)
	h := start(t, env.Admin)
	ns := env.Namespace(t)
	c := objects(t, env.Admin, configMaps, ns)
	create(t, c, configMap("a", nil, nil, nil))
	s := h.open(t, "restart", fmt.Sprintf("namespace: %s\nversion: v1\nkind: ConfigMap", ns))
	env.RestartAPIServer(t)
	patch(t, c, "a", `{"data":{"after":"restart"}}`)
	expect(t, s, "MODIFIED "+ns+"/a")
}

// With no rights the source fails with the API server's reason, which the real
// gateway-client shows as the source's Error; once RBAC grants list and watch, the
// source runs and its events reach the sensor.
func TestForbiddenThenGrantedEndToEnd(t *testing.T) {
	env := kubeenv.Shared(t)
	ns := env.Namespace(t)
	gw := newGateway()
	gw.restConfig = func() (*rest.Config, error) { return env.User, nil }
	server := testenv.StartGateway(t, gw)
	sensor := testenv.StartSensor(t, sensorsink.Endpoints{})
	client := observed{url: testenv.StartClient(t, testenv.ClientConfig{
		GatewayType: gatewayType,
		Servers:     []string{server.Addr},
		Sensors:     []string{sensor.URL},
		Sources:     map[string]string{"cms": fmt.Sprintf("namespace: %s\nversion: v1\nkind: ConfigMap\nbackoff: {duration: 100ms, factor: 1}", ns)},
	}).ObserveURL}

	testenv.Eventually(t, 60*time.Second, 50*time.Millisecond, func() error {
		st := client.status(t)
		if st.Phase != "Error" || !strings.Contains(st.Message, "forbidden") {
			return fmt.Errorf("status %s %q, want Error with forbidden", st.Phase, st.Message)
		}
		return nil
	})
	grant(t, env, ns)
	c := objects(t, env.Admin, configMaps, ns)
	// The source is back within its backoff; objects made until then are not events
	// (they existed when it started): create probes until one arrives.
	testenv.Eventually(t, 60*time.Second, 200*time.Millisecond, func() error {
		create(t, c, &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "metadata": map[string]any{"generateName": "probe-"}}})
		if len(sensor.Received()) == 0 {
			return fmt.Errorf("no event at the sensor yet")
		}
		return nil
	})
	if st := client.status(t); st.Phase != "Running" {
		t.Errorf("status %s %q, want Running", st.Phase, st.Message)
	}
	ev := sensor.Received()[0]
	var r received
	if err := json.Unmarshal(ev.Data(), &r); err != nil {
		t.Fatal(err)
	}
	if ev.Type() != gatewayType || ev.Subject() != "cms" || r.Type != "ADDED" || r.Namespace != ns || !strings.HasPrefix(r.Name, "probe-") {
		t.Errorf("event type %q subject %q payload %s", ev.Type(), ev.Subject(), ev.Data())
	}
}

// RBAC allows list but not watch: the informer would list, fail to watch, and list again
// on backoff, a slow poller that misses short-lived changes. The source ends with the
// reason instead, at start and when watch permission is revoked later (noticed when the
// informer watches again, here after a broken connection).
func TestWatchForbidden(t *testing.T) {
	env := kubeenv.Shared(t)
	ns := env.Namespace(t)
	h, proxy := startViaProxy(t, env.User)
	allow(t, env, ns, "list")
	waitWatchAllowed(t, env, ns, false)
	src := &gateways.EventSource{Name: "cms", Data: fmt.Sprintf("namespace: %s\nversion: v1\nkind: ConfigMap\nbackoff: {duration: 10ms}", ns)}
	s := testenv.OpenStream(t, h.server.Client, src)
	if _, err := s.TryNext(30 * time.Second); err == nil || !strings.Contains(err.Error(), "cannot watch") {
		t.Fatalf("list allowed, watch forbidden: %v, want the stream to end with the reason", err)
	}
	select {
	case name := <-h.watching:
		t.Errorf("source %q reported watching although RBAC forbids watch", name)
	default:
	}

	// Granted, the source starts again on a new informer, and watches.
	setVerbs(t, env, ns, "list", "watch")
	waitWatchAllowed(t, env, ns, true)
	s = h.open(t, src.Name, src.Data)

	setVerbs(t, env, ns, "list")
	waitWatchAllowed(t, env, ns, false)
	proxy.Cut()
	proxy.Restore()
	if _, err := s.TryNext(30 * time.Second); err == nil || !strings.Contains(err.Error(), "cannot watch") {
		t.Fatalf("watch revoked: %v, want the stream to end with the reason", err)
	}
}

// waitWatchAllowed waits until RBAC's answer to the test user's watch of ConfigMaps in ns
// is allowed: the API server's authorizer sees role changes a moment after they are made.
func waitWatchAllowed(t *testing.T, env *kubeenv.Env, ns string, allowed bool) {
	t.Helper()
	cms := objects(t, env.User, configMaps, ns)
	timeout := int64(1)
	testenv.Eventually(t, 20*time.Second, 50*time.Millisecond, func() error {
		w, err := cms.Watch(context.Background(), metav1.ListOptions{TimeoutSeconds: &timeout})
		if err == nil {
			w.Stop()
		}
		if got := !apierrors.IsForbidden(err); got != allowed {
			return fmt.Errorf("watch allowed %v (%v), want %v", got, err, allowed)
		}
		return nil
	})
}

func rbac(t *testing.T, env *kubeenv.Env, ns, resource string) dynamic.ResourceInterface {
	return objects(t, env.Admin, schema.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: resource}, ns)
}

// grant lets the test user list and watch ConfigMaps in ns.
func grant(t *testing.T, env *kubeenv.Env, ns string) { allow(t, env, ns, "list", "watch") }

// allow lets the test user do verbs on ConfigMaps in ns, through the Role setVerbs changes.
func allow(t *testing.T, env *kubeenv.Env, ns string, verbs ...any) {
	t.Helper()
	create(t, rbac(t, env, ns, "roles"), &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": map[string]any{"name": "watch-cms"},
		"rules": []any{map[string]any{"apiGroups": []any{""}, "resources": []any{"configmaps"}, "verbs": verbs}},
	}})
	create(t, rbac(t, env, ns, "rolebindings"), &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": map[string]any{"name": "watch-cms"},
		"roleRef":  map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "watch-cms"},
		"subjects": []any{map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": env.UserName}},
	}})
}

// setVerbs changes the verbs allow granted.
func setVerbs(t *testing.T, env *kubeenv.Env, ns string, verbs ...string) {
	t.Helper()
	rules, _ := json.Marshal([]any{map[string]any{"apiGroups": []string{""}, "resources": []string{"configmaps"}, "verbs": verbs}})
	patch(t, rbac(t, env, ns, "roles"), "watch-cms", fmt.Sprintf(`{"rules":%s}`, rules))
}

// observed is the gateway-client's /status.
type observed struct{ url string }

type sourceStatus struct {
	Phase, Message string
}

func (o observed) status(t *testing.T) sourceStatus {
	t.Helper()
	resp, err := http.Get(o.url + "/status")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var all []sourceStatus
	if err := json.NewDecoder(resp.Body).Decode(&all); err != nil || len(all) != 1 {
		t.Fatalf("/status: %v, %d sources", err, len(all))
	}
	return all[0]
}

// The server starts and validates with no API server; starting a source then fails with
// the reason, and the server keeps serving.
func TestNoAPIServer(t *testing.T) {
	h := start(t, &rest.Config{Host: "https://" + testenv.FreePort(t), TLSClientConfig: rest.TLSClientConfig{Insecure: true}})
	valid, err := h.server.Client.ValidateEventSource(context.Background(), &gateways.EventSource{Name: "a", Data: "version: v1\nkind: ConfigMap"})
	if err != nil || !valid.GetIsValid() {
		t.Fatalf("validate: %v %v", valid, err)
	}
	s := testenv.OpenStream(t, h.server.Client, &gateways.EventSource{Name: "a", Data: "version: v1\nkind: ConfigMap"})
	if _, err := s.TryNext(30 * time.Second); err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("stream: %v, want it to end with connection refused", err)
	}
	testenv.ExpectInvalid(t, h.server.Client, []testenv.InvalidCase{
		{Name: "both kind and resource", Data: "version: v1\nkind: ConfigMap\nresource: configmaps", Reason: "resource.kind: use either kind or resource, not both"},
		{Name: "createdBy not RFC 3339", Data: "version: v1\nkind: Pod\nfilter: {createdBy: 'last week'}", Field: "resource.filter.createdBy"},
		{Name: "unknown type", Data: "version: v1\nkind: Pod\ntype: CHANGED", Field: "resource.type"},
	})
}
