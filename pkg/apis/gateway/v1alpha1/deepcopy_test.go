package v1alpha1

import (
	"reflect"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The controller reconciles a DeepCopy of what its informer cache holds: a copy that shares
// a map, slice or pointer with the original would corrupt the cache.
func TestDeepCopyIsIndependent(t *testing.T) {
	original := example(t, "webhook")
	original.Spec.Watchers.Gateways = []GatewayNotificationWatcher{{Name: "gw2", Port: "9300", Endpoint: "/"}}
	original.Status = GatewayStatus{
		Phase: NodePhaseRunning, StartedAt: metav1.NewTime(time.Unix(1, 0)),
		Nodes: map[string]NodeStatus{"n1": {ID: "n1", Name: "example", Phase: NodePhaseRunning}},
	}
	pristine := original.DeepCopy()

	mutations := []struct {
		name   string
		mutate func(*Gateway)
	}{
		{"labels", func(g *Gateway) { g.Labels[LabelGatewayVersion] = "v1" }},
		{"event protocol", func(g *Gateway) { g.Spec.EventProtocol.HTTP.Port = "1" }},
		// The template and the Service are raw JSON: a copy must not share its bytes.
		{"template", func(g *Gateway) { g.Spec.Template.Raw[0] = ' ' }},
		{"service", func(g *Gateway) { g.Spec.Service.Raw[0] = ' ' }},
		{"sensor watcher", func(g *Gateway) { g.Spec.Watchers.Sensors[0].Name = "x" }},
		{"gateway watcher", func(g *Gateway) { g.Spec.Watchers.Gateways[0].Port = "1" }},
		{"status node", func(g *Gateway) { g.Status.Nodes["n1"] = NodeStatus{ID: "changed"} }},
		{"status new node", func(g *Gateway) { g.Status.Nodes["n2"] = NodeStatus{ID: "n2"} }},
	}
	for _, tc := range mutations {
		t.Run(tc.name, func(t *testing.T) {
			cp := original.DeepCopy()
			if !reflect.DeepEqual(cp, original) {
				t.Fatal("the copy differs from the original before any change")
			}
			tc.mutate(cp)
			if !reflect.DeepEqual(original, pristine) {
				t.Errorf("changing the copy's %s changed the original", tc.name)
			}
		})
	}
}

func TestDeepCopyObject(t *testing.T) {
	list := &GatewayList{Items: []Gateway{*example(t, "webhook"), *example(t, "calendar")}}
	obj := list.DeepCopyObject()
	cp, ok := obj.(*GatewayList)
	if !ok {
		t.Fatalf("DeepCopyObject gave a %T", obj)
	}
	cp.Items[0].Spec.Type = "x"
	cp.Items[1].Spec.Template.Raw[0] = ' '
	if list.Items[0].Spec.Type != "webhook" || podTemplate(t, list.Items[1].Spec).Spec.Containers[0].Name != "gateway-client" {
		t.Error("changing the list's copy changed the list")
	}
	if _, ok := list.Items[0].DeepCopyObject().(*Gateway); !ok {
		t.Error("Gateway.DeepCopyObject is not a *Gateway")
	}
}
