package main

import (
	"context"
	"fmt"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/eventgate/eventgate/pkg/testenv"
	"github.com/eventgate/eventgate/pkg/testenv/kubeenv"
)

// The shared test API server runs the OwnerReferencesPermissionEnforcement admission plugin
// (OpenShift's default): the children's ownerReferences carry blockOwnerDeletion, which it
// allows only to whoever may update the Gateway's finalizers. With the chart's rights, the
// controller still makes the Deployment and Service, and the Gateway does not go Error.
func TestChartControllerUnderOwnerReferencesPermissionEnforcement(t *testing.T) {
	k := newKubeTest(t)
	k.startChartController(t)
	k.create(t, k.seed(t))
	d := k.waitDeployment(t, "webhook-gateway-http", nil)
	if refs := d.OwnerReferences; len(refs) != 1 || refs[0].BlockOwnerDeletion == nil || !*refs[0].BlockOwnerDeletion {
		t.Errorf("Deployment ownerReferences %+v: want one, with blockOwnerDeletion (what the admission plugin checks)", refs)
	}
	k.waitService(t, "webhook-gateway-svc", nil)
	k.waitPhase(t, "webhook-gateway", "Pending")
}

// The seed's example Gateway, applied unchanged but for its image names, becomes a
// Deployment and a Service with v0.10's environment, labels and owner; the controller runs
// as the chart's Deployment runs it, with its ServiceAccount's rights; the phase goes Pending, then Running once the Deployment
// is available, and the client's status.nodes are left alone.
func TestSeedGatewayBecomesDeploymentAndService(t *testing.T) {
	k := newKubeTest(t)
	k.startChartController(t)

	gw := k.seed(t)
	k.create(t, gw)
	// What a gateway-client writes: the controller must keep it.
	k.patch(t, "webhook-gateway", `{"status":{"nodes":{"n1":{"id":"n1","name":"example","displayName":"example","phase":"Running"}}}}`)
	owner := k.gateway(t, "webhook-gateway")

	d := k.waitDeployment(t, "webhook-gateway-http", nil)
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 1 {
		t.Errorf("replicas = %v, want 1", d.Spec.Replicas)
	}
	checkOwned(t, "Deployment", d.ObjectMeta, owner)
	if d.Annotations[annotationSpecHash] == "" {
		t.Errorf("Deployment has no %s annotation", annotationSpecHash)
	}
	if got := d.Spec.Template.Labels[labelGatewayName]; got != "webhook-gateway" {
		t.Errorf("pod label %s = %q", labelGatewayName, got)
	}
	wantEnv := map[string]string{
		"GATEWAY_NAMESPACE":               k.ns,
		"GATEWAY_EVENT_SOURCE_CONFIG_MAP": "webhook-event-source",
		"GATEWAY_NAME":                    "webhook-gateway",
		"GATEWAY_CONTROLLER_INSTANCE_ID":  "argo-events",
		"GATEWAY_CONTROLLER_NAME":         "gateway-controller",
		"GATEWAY_SERVER_PORT":             "9330",
		"GATEWAY_SERVER_HOST":             "127.0.0.1",
		"GATEWAY_SOURCE_HOST":             "",
	}
	containers := d.Spec.Template.Spec.Containers
	if len(containers) != 2 {
		t.Fatalf("containers: %d, want the template's 2", len(containers))
	}
	wantCmd := map[string]string{"gateway-client": "/bin/gateway-client", "webhook-events": "/bin/webhook-gateway"}
	for _, c := range containers {
		if got := envOf(t, c); fmt.Sprint(got) != fmt.Sprint(wantEnv) {
			t.Errorf("container %s env:\n got %v\nwant %v", c.Name, got, wantEnv)
		}
		if got := strings.Join(c.Command, " "); got != wantCmd[c.Name] {
			t.Errorf("container %s command = %q, want the template's %q", c.Name, got, wantCmd[c.Name])
		}
	}
	if got := d.Spec.Template.Spec.ServiceAccountName; got != "argo-events-sa" {
		t.Errorf("serviceAccountName = %q", got)
	}

	svc := k.waitService(t, "webhook-gateway-svc", nil)
	checkOwned(t, "Service", svc.ObjectMeta, owner)
	if svc.Spec.Type != corev1.ServiceTypeLoadBalancer || len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != 12000 {
		t.Errorf("Service spec = %+v, want the Gateway's LoadBalancer on 12000", svc.Spec)
	}
	if svc.Spec.Selector[labelGatewayName] != "webhook-gateway" {
		t.Errorf("Service selector = %v", svc.Spec.Selector)
	}

	k.waitPhase(t, "webhook-gateway", "Pending")
	k.makeAvailable(t, "webhook-gateway-http")
	if msg := k.waitPhase(t, "webhook-gateway", "Running"); !strings.Contains(msg, "webhook-gateway-http") {
		t.Errorf("Running message = %q, want it to name the Deployment", msg)
	}
	nodes, _, _ := unstructured.NestedMap(k.gateway(t, "webhook-gateway").Object, "status", "nodes")
	if _, ok := nodes["n1"]; !ok || len(nodes) != 1 {
		t.Errorf("status.nodes = %v, want the client's node n1 kept", nodes)
	}
}

func checkOwned(t *testing.T, kind string, m metav1.ObjectMeta, gw *unstructured.Unstructured) {
	t.Helper()
	if m.Labels[labelGatewayName] != gw.GetName() || m.Labels[labelInstanceID] != "argo-events" {
		t.Errorf("%s labels = %v, want %s=%s and %s=argo-events", kind, m.Labels, labelGatewayName, gw.GetName(), labelInstanceID)
	}
	ref := metav1.GetControllerOfNoCopy(&m)
	if ref == nil || ref.UID != gw.GetUID() || ref.Kind != "Gateway" || ref.APIVersion != "argoproj.io/v1alpha1" {
		t.Errorf("%s controller reference = %+v, want Gateway %s (%s)", kind, ref, gw.GetName(), gw.GetUID())
	}
}

// An edited Gateway rolls its Deployment in place; a Deployment edited or deleted by hand,
// and a deleted Service, are put back; a Service the Gateway drops is removed.
func TestChildrenFollowTheGateway(t *testing.T) {
	k := newKubeTest(t)
	c := k.startController(t, k.env.AdminKubeconfig, "--instance-id", "argo-events", "--leader-elect=false")
	k.create(t, k.seed(t))
	first := k.waitDeployment(t, "webhook-gateway-http", nil)
	image := func(d *appsv1.Deployment) string { return d.Spec.Template.Spec.Containers[1].Image }

	t.Run("a reconcile with nothing to change writes nothing", func(t *testing.T) {
		k.waitPhase(t, "webhook-gateway", "Pending")
		svc := k.waitService(t, "webhook-gateway-svc", nil)
		k.touchAndWaitReconcile(t, c, "webhook-gateway")
		d := k.waitDeployment(t, "webhook-gateway-http", nil)
		if d.ResourceVersion != first.ResourceVersion {
			t.Errorf("Deployment rewritten: resourceVersion %s -> %s", first.ResourceVersion, d.ResourceVersion)
		}
		if now := k.waitService(t, "webhook-gateway-svc", nil); now.ResourceVersion != svc.ResourceVersion {
			t.Errorf("Service rewritten: resourceVersion %s -> %s", svc.ResourceVersion, now.ResourceVersion)
		}
	})

	t.Run("spec edit rolls the Deployment in place", func(t *testing.T) {
		k.patch(t, "webhook-gateway", `{"spec":{"processorPort":"9331"}}`)
		d := k.waitDeployment(t, "webhook-gateway-http", func(d *appsv1.Deployment) error {
			if got := envOf(t, d.Spec.Template.Spec.Containers[0])["GATEWAY_SERVER_PORT"]; got != "9331" {
				return fmt.Errorf("GATEWAY_SERVER_PORT = %q", got)
			}
			return nil
		})
		if d.UID != first.UID {
			t.Error("the Deployment was replaced, not updated in place")
		}
		if d.Annotations[annotationSpecHash] == first.Annotations[annotationSpecHash] {
			t.Error("the spec hash did not change")
		}
	})
	t.Run("a sensor edit rolls the pod, whose client reads the Gateway once", func(t *testing.T) {
		before := k.waitDeployment(t, "webhook-gateway-http", nil)
		k.patch(t, "webhook-gateway", `{"spec":{"watchers":{"sensors":[{"name":"another-sensor"}]}}}`)
		k.waitDeployment(t, "webhook-gateway-http", func(d *appsv1.Deployment) error {
			if d.Spec.Template.Annotations[annotationGatewaySpec] == before.Spec.Template.Annotations[annotationGatewaySpec] {
				return fmt.Errorf("pod template annotation %s still %q", annotationGatewaySpec, before.Spec.Template.Annotations[annotationGatewaySpec])
			}
			return nil
		})
	})
	t.Run("hand edit is restored", func(t *testing.T) {
		d := k.waitDeployment(t, "webhook-gateway-http", nil)
		d.Spec.Template.Spec.Containers[1].Image = "attacker/webhook"
		if _, err := k.kube.AppsV1().Deployments(k.ns).Update(context.Background(), d, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		k.waitDeployment(t, "webhook-gateway-http", func(d *appsv1.Deployment) error {
			if image(d) != "eventgate/webhook" {
				return fmt.Errorf("image %q", image(d))
			}
			return nil
		})
	})
	t.Run("deleted children are restored", func(t *testing.T) {
		ctx := context.Background()
		before := k.waitDeployment(t, "webhook-gateway-http", nil)
		if err := k.kube.AppsV1().Deployments(k.ns).Delete(ctx, "webhook-gateway-http", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := k.kube.CoreV1().Services(k.ns).Delete(ctx, "webhook-gateway-svc", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		k.waitDeployment(t, "webhook-gateway-http", func(d *appsv1.Deployment) error {
			if d.UID == before.UID {
				return fmt.Errorf("not deleted yet")
			}
			return nil
		})
		k.waitService(t, "webhook-gateway-svc", nil)
	})
	t.Run("dropped service is removed", func(t *testing.T) {
		k.patch(t, "webhook-gateway", `{"spec":{"service":null}}`)
		k.waitGone(t, "Service webhook-gateway-svc", func() error {
			_, err := k.kube.CoreV1().Services(k.ns).Get(context.Background(), "webhook-gateway-svc", metav1.GetOptions{})
			return err
		})
	})
	t.Run("renamed pod template replaces the Deployment", func(t *testing.T) {
		k.patch(t, "webhook-gateway", `{"spec":{"template":{"metadata":{"name":"webhook-gateway-v2"}}}}`)
		k.waitDeployment(t, "webhook-gateway-v2", nil)
		k.waitGone(t, "Deployment webhook-gateway-http", func() error {
			_, err := k.kube.AppsV1().Deployments(k.ns).Get(context.Background(), "webhook-gateway-http", metav1.GetOptions{})
			return err
		})
	})
}

// Gateways of another instance, or of another version, are left alone.
func TestOtherInstancesAreIgnored(t *testing.T) {
	k := newKubeTest(t)
	k.startController(t, k.env.AdminKubeconfig, "--instance-id", "argo-events", "--leader-elect=false")
	other := k.seed(t)
	other.SetName("other-instance")
	other.SetLabels(map[string]string{labelInstanceID: "someone-else", "argo-events-gateway-version": "v0.10"})
	unstructured.SetNestedField(other.Object, "other-instance-pod", "spec", "template", "metadata", "name")
	k.create(t, other)
	oldVersion := k.seed(t)
	oldVersion.SetName("old-version")
	oldVersion.SetLabels(map[string]string{labelInstanceID: "argo-events", "argo-events-gateway-version": "v0.9"})
	unstructured.SetNestedField(oldVersion.Object, "old-version-pod", "spec", "template", "metadata", "name")
	k.create(t, oldVersion)
	// Created last: once it is handled, the two before it have been seen.
	k.create(t, k.seed(t))
	k.waitPhase(t, "webhook-gateway", "Pending")

	list, err := k.kube.AppsV1().Deployments(k.ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 1 || list.Items[0].Name != "webhook-gateway-http" {
		var names []string
		for _, d := range list.Items {
			names = append(names, d.Name)
		}
		t.Errorf("Deployments %v, want only webhook-gateway-http", names)
	}
	for _, name := range []string{"other-instance", "old-version"} {
		if phase, _, _ := unstructured.NestedString(k.gateway(t, name).Object, "status", "phase"); phase != "" {
			t.Errorf("Gateway %s got phase %q from a controller it does not belong to", name, phase)
		}
	}
}

// A Gateway that cannot run gets phase Error naming the field, and a Warning Event; the
// controller does not crash, and the other Gateways are unaffected.
func TestInvalidGateways(t *testing.T) {
	k := newKubeTest(t)
	c := k.startController(t, k.env.AdminKubeconfig, "--instance-id", "argo-events", "--leader-elect=false")
	set := func(value any, path ...string) func(*unstructured.Unstructured) {
		return func(u *unstructured.Unstructured) { unstructured.SetNestedField(u.Object, value, path...) }
	}
	cases := []struct {
		name   string
		mutate func(*unstructured.Unstructured)
		field  string
		reason string
	}{
		{"no-template", func(u *unstructured.Unstructured) { unstructured.RemoveNestedField(u.Object, "spec", "template") },
			"spec.template.spec.containers: required", reasonInvalid},
		{"nats-without-options", set(map[string]any{"type": "NATS"}, "spec", "eventProtocol"),
			"spec.eventProtocol.nats: required for type NATS", reasonInvalid},
		{"bad-port", set("port-9330", "spec", "processorPort"),
			`spec.processorPort: must be a port number (1-65535), got "port-9330"`, reasonInvalid},
		{"bad-dead-letter-sink", set([]any{map[string]any{"name": "webhook-sensor", "delivery": map[string]any{"deadLetterSink": "dead-letters"}}}, "spec", "watchers", "sensors"),
			`spec.watchers.sensors[0].delivery.deadLetterSink: must be an absolute http(s) URL, got "dead-letters"`, reasonInvalid},
		// Valid as a Gateway, refused by the API server as a Deployment: the create fails.
		{"rejected-pod", set([]any{map[string]any{"name": "Not_A_DNS_Label", "image": "eventgate/webhook"}}, "spec", "template", "spec", "containers"),
			"create Deployment", reasonChildFailed},
	}
	for _, tc := range cases {
		// Created invalid, so that no valid version of it was ever reconciled; without a
		// Service, so that none of them holds the seed's Service name.
		gw := k.seed(t)
		gw.SetName(tc.name)
		unstructured.SetNestedField(gw.Object, tc.name+"-pod", "spec", "template", "metadata", "name")
		unstructured.RemoveNestedField(gw.Object, "spec", "service")
		tc.mutate(gw)
		k.create(t, gw)
	}
	k.create(t, k.seed(t))
	k.waitDeployment(t, "webhook-gateway-http", nil)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if msg := k.waitPhase(t, tc.name, "Error"); !strings.Contains(msg, tc.field) {
				t.Errorf("message %q does not name %q", msg, tc.field)
			}
			testenv.Eventually(t, wait, poll, func() error {
				for _, w := range k.warnings(t, tc.name) {
					if strings.HasPrefix(w, tc.reason+": ") && strings.Contains(w, tc.field) {
						return nil
					}
				}
				return fmt.Errorf("no Warning Event %s naming %q: %v", tc.reason, tc.field, k.warnings(t, tc.name))
			})
			if _, err := k.kube.AppsV1().Deployments(k.ns).Get(context.Background(), tc.name+"-pod", metav1.GetOptions{}); err == nil {
				t.Error("an invalid Gateway got a Deployment")
			}
		})
	}
	t.Run("unknown-protocol", func(t *testing.T) {
		// The CRD's schema refuses it before the controller sees it.
		gw := k.seed(t)
		gw.SetName("unknown-protocol")
		unstructured.SetNestedField(gw.Object, "KAFKA", "spec", "eventProtocol", "type")
		_, err := k.gws.Create(context.Background(), gw, metav1.CreateOptions{})
		if err == nil || !strings.Contains(err.Error(), "spec.eventProtocol.type") {
			t.Errorf("create with eventProtocol.type KAFKA: %v, want a refusal naming spec.eventProtocol.type", err)
		}
	})
	t.Run("bad-delivery", func(t *testing.T) {
		// The schema refuses a negative retry and an unknown backoff policy too.
		for field, delivery := range map[string]map[string]any{
			"spec.watchers.sensors[0].delivery.retry":         {"retry": int64(-1)},
			"spec.watchers.sensors[0].delivery.backoffPolicy": {"backoffPolicy": "fibonacci"},
		} {
			gw := k.seed(t)
			gw.SetName("bad-delivery")
			unstructured.SetNestedField(gw.Object, []any{map[string]any{"name": "webhook-sensor", "delivery": delivery}}, "spec", "watchers", "sensors")
			_, err := k.gws.Create(context.Background(), gw, metav1.CreateOptions{})
			if err == nil || !strings.Contains(err.Error(), field) {
				t.Errorf("create with delivery %v: %v, want a refusal naming %s", delivery, err, field)
			}
		}
	})
	if exited, err := c.Exited(); exited {
		t.Fatalf("the controller exited: %v", err)
	}
	// Fixed, it runs.
	k.patch(t, "bad-port", `{"spec":{"processorPort":"9330"}}`)
	k.waitDeployment(t, "bad-port-pod", nil)
}

// The gateway-client writes phase Error with its reason when it cannot run, and exits: its
// pod crash-loops and the Deployment never becomes available. The controller keeps that
// Error (it would otherwise write Pending over it at once, the client's patch queueing the
// Gateway), also through an edit of the Gateway, and writes Running once the Deployment is
// available.
func TestClientErrorKeptUntilTheDeploymentIsAvailable(t *testing.T) {
	k := newKubeTest(t)
	c := k.startController(t, k.env.AdminKubeconfig, "--instance-id", "argo-events", "--leader-elect=false")
	k.create(t, k.seed(t))
	k.waitPhase(t, "webhook-gateway", "Pending")

	// What the client's failGateway writes.
	const clientMessage = "gateway-client: Gateway x/webhook-gateway cannot run: no sensors to deliver to"
	k.patch(t, "webhook-gateway", `{"status":{"phase":"Error","message":"`+clientMessage+`"}}`)
	// An edit that rewrites the Deployment: once the new Deployment is seen, the reconcile
	// that wrote it, which saw the Error too, is the one running or done, and a reconcile
	// that completes from then on wrote whatever it would. The label queues one more.
	k.patch(t, "webhook-gateway", `{"spec":{"processorPort":"9331"}}`)
	k.waitDeployment(t, "webhook-gateway-http", func(d *appsv1.Deployment) error {
		if got := envOf(t, d.Spec.Template.Spec.Containers[0])["GATEWAY_SERVER_PORT"]; got != "9331" {
			return fmt.Errorf("GATEWAY_SERVER_PORT = %q", got)
		}
		return nil
	})
	k.touchAndWaitReconcile(t, c, "webhook-gateway")
	u := k.gateway(t, "webhook-gateway")
	phase, _, _ := unstructured.NestedString(u.Object, "status", "phase")
	msg, _, _ := unstructured.NestedString(u.Object, "status", "message")
	if phase != "Error" || msg != clientMessage {
		t.Fatalf("status %s %q, want the client's Error %q kept", phase, msg, clientMessage)
	}

	k.makeAvailable(t, "webhook-gateway-http")
	if msg := k.waitPhase(t, "webhook-gateway", "Running"); !strings.Contains(msg, "webhook-gateway-http") {
		t.Errorf("Running message = %q, want it to name the Deployment", msg)
	}
}

// A status decided on a stale copy of the Gateway (the informer's cache behind a write)
// is refused, not written over what was written since, such as the client's Error.
func TestStatusFromAStaleCopyIsNotWritten(t *testing.T) {
	k := newKubeTest(t)
	k.create(t, k.seed(t))
	stale := k.gateway(t, "webhook-gateway")
	const clientMessage = "gateway-client: Gateway x/webhook-gateway cannot run: no sensors to deliver to"
	k.patch(t, "webhook-gateway", `{"status":{"phase":"Error","message":"`+clientMessage+`"}}`)

	c := &controller{gateways: kubeenv.Dynamic(t, k.env.Admin).Resource(gatewaysGVR), log: testenv.Logger(t)}
	err := c.setStatus(context.Background(), stale, "Pending", "waiting for Deployment webhook-gateway-http to become available", "")
	if !apierrors.IsConflict(err) {
		t.Errorf("setStatus on a stale copy: %v, want a Conflict", err)
	}
	u := k.gateway(t, "webhook-gateway")
	if phase, _, _ := unstructured.NestedString(u.Object, "status", "phase"); phase != "Error" {
		t.Errorf("phase %q after a write from a stale copy, want the client's Error kept", phase)
	}
	// On the current copy, it writes.
	if err := c.setStatus(context.Background(), u, "Pending", "waiting", ""); err != nil {
		t.Fatal(err)
	}
	if phase, _, _ := unstructured.NestedString(k.gateway(t, "webhook-gateway").Object, "status", "phase"); phase != "Pending" {
		t.Errorf("phase %q after a write from the current copy, want Pending", phase)
	}
}
