package main

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/eventgate/eventgate/pkg/apis/gateway/v1alpha1"
	"github.com/eventgate/eventgate/pkg/server"
)

func testGateway() *gateway {
	gw := &v1alpha1.Gateway{
		ObjectMeta: metav1.ObjectMeta{Name: "gw", Namespace: "ns", UID: "uid-1"},
		Spec: v1alpha1.GatewaySpec{
			Type:          "webhook",
			EventSource:   "other/sources",
			ProcessorPort: "9444",
			EventProtocol: v1alpha1.EventProtocol{Type: v1alpha1.ProtocolHTTP},
			Watchers:      &v1alpha1.NotificationWatchers{Sensors: []v1alpha1.SensorNotificationWatcher{{Name: "s"}}},
		},
	}
	gw.Default()
	return &gateway{Gateway: gw, template: corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Name: "gw-pod", Labels: map[string]string{"team": "a", labelGatewayName: "wrong"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{
			{Name: "client", Image: "eventgate/gateway-client"},
			{Name: "server", Image: "eventgate/webhook", Env: []corev1.EnvVar{
				{Name: "LOG_LEVEL", Value: "debug"},
				{Name: "GATEWAY_SERVER_PORT", Value: "1"},
			}},
		}},
	}}
}

func TestDesiredDeployment(t *testing.T) {
	gw := testGateway()
	d := desiredDeployment(gw, "team-a", "ctl")
	if d.Name != "gw-pod" || d.Namespace != "ns" {
		t.Errorf("name %s/%s, want ns/gw-pod (the template's pod name)", d.Namespace, d.Name)
	}
	if got := d.Spec.Template.Labels; got["team"] != "a" || got[labelGatewayName] != "gw" || got[labelInstanceID] != "team-a" {
		t.Errorf("pod labels %v: want the template's, with gateway-name and the instance id forced", got)
	}
	if got := d.Spec.Selector.MatchLabels; len(got) != 1 || got[labelGatewayName] != "gw" {
		t.Errorf("selector %v", got)
	}
	server := d.Spec.Template.Spec.Containers[1].Env
	var names []string
	for _, e := range server {
		names = append(names, e.Name+"="+e.Value)
	}
	want := "LOG_LEVEL=debug GATEWAY_SERVER_PORT=9444 GATEWAY_NAMESPACE=ns GATEWAY_EVENT_SOURCE_CONFIG_MAP=other/sources " +
		"GATEWAY_NAME=gw GATEWAY_CONTROLLER_INSTANCE_ID=team-a GATEWAY_CONTROLLER_NAME=ctl GATEWAY_SERVER_HOST=127.0.0.1 GATEWAY_SOURCE_HOST="
	if got := strings.Join(names, " "); got != want {
		t.Errorf("server env:\n got %s\nwant %s", got, want)
	}
	if gw.template.Spec.Containers[1].Env[1].Value != "1" || gw.template.Labels[labelGatewayName] != "wrong" {
		t.Error("desiredDeployment changed the Gateway")
	}
	if ref := metav1.GetControllerOf(d); ref == nil || ref.UID != "uid-1" || ref.Kind != "Gateway" {
		t.Errorf("controller reference %+v", ref)
	}

	t.Run("hash follows the spec", func(t *testing.T) {
		same := desiredDeployment(testGateway(), "team-a", "ctl")
		if same.Annotations[annotationSpecHash] != d.Annotations[annotationSpecHash] {
			t.Error("the same Gateway hashed differently")
		}
		changed := testGateway()
		changed.template.Spec.Containers[0].Image = "eventgate/gateway-client:v2"
		if desiredDeployment(changed, "team-a", "ctl").Annotations[annotationSpecHash] == d.Annotations[annotationSpecHash] {
			t.Error("a changed image kept the hash")
		}
	})
	t.Run("the pod rolls for what the client reads of the Gateway", func(t *testing.T) {
		pod := func(gw *gateway) string {
			return desiredDeployment(gw, "team-a", "ctl").Spec.Template.Annotations[annotationGatewaySpec]
		}
		base := pod(testGateway())
		if base == "" || base != pod(testGateway()) {
			t.Fatalf("gateway spec hash %q, want the same non-empty hash for the same Gateway", base)
		}
		sensors := testGateway()
		sensors.Spec.Watchers = &v1alpha1.NotificationWatchers{Sensors: []v1alpha1.SensorNotificationWatcher{{Name: "another-sensor"}}}
		if pod(sensors) == base {
			t.Error("a changed sensor list kept the pod's hash: the running client would never deliver to it")
		}
		svc := testGateway()
		svc.Spec.Service = &runtime.RawExtension{Raw: []byte(`{"spec":{"ports":[{"port":12000}]}}`)}
		if pod(svc) != base {
			t.Error("a Service edit changed the pod's hash: it needs no new pod")
		}
	})
	t.Run("pod name defaults to the Gateway's", func(t *testing.T) {
		gw := testGateway()
		gw.template.Name = ""
		if got := desiredDeployment(gw, "x", "ctl").Name; got != "gw" {
			t.Errorf("name %q", got)
		}
	})
}

func TestDesiredService(t *testing.T) {
	gw := testGateway()
	if s := desiredService(gw, "team-a"); s != nil {
		t.Errorf("a Gateway without spec.service got %v", s)
	}
	gw.service = &corev1.Service{Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 12000, TargetPort: intstr.FromInt32(12000)}}}}
	s := desiredService(gw, "team-a")
	if s.Name != "gw-svc" || s.Namespace != "ns" {
		t.Errorf("name %s/%s, want ns/gw-svc", s.Namespace, s.Name)
	}
	if s.Spec.Selector[labelGatewayName] != "gw" {
		t.Errorf("selector %v, want the gateway pod's", s.Spec.Selector)
	}
	gw.service.Name = "hooks"
	gw.service.Spec.Selector = map[string]string{"app": "mine"}
	s = desiredService(gw, "team-a")
	if s.Name != "hooks" || len(s.Spec.Selector) != 1 || s.Spec.Selector["app"] != "mine" {
		t.Errorf("service %s with selector %v, want the Gateway's name and selector", s.Name, s.Spec.Selector)
	}
}

func TestValidateNeedsAPod(t *testing.T) {
	gw := testGateway()
	gw.template = corev1.PodTemplateSpec{}
	gw.Spec.ProcessorPort = "x"
	err := validate(gw)
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{`spec.processorPort: must be a port number (1-65535), got "x"`, "spec.template.spec.containers: required"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%v: does not say %q", err, want)
		}
	}
	gw = testGateway()
	gw.template.Spec.Containers[1].Image = ""
	if err := validate(gw); err == nil || !strings.Contains(err.Error(), "spec.template.spec.containers[1].image: required") {
		t.Errorf("container without image: %v", err)
	}
}

// A name Kubernetes refuses on a child (a dotted name for the default Service name, one
// longer than a label value) makes the Gateway invalid as written, rather than a child
// apply that fails and is retried for as long as the Gateway exists.
func TestValidateTheNameTheChildrenCarry(t *testing.T) {
	withService := func(name, serviceName string) *gateway {
		gw := testGateway()
		gw.Name = name
		gw.service = &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: serviceName}}
		return gw
	}
	long := strings.Repeat("g", 64)
	for _, tc := range []struct {
		name string
		gw   *gateway
		want string // "" for valid
	}{
		{"plain", withService("webhook-gateway", ""), ""},
		{"dotted, Service named after it", withService("hooks.prod", ""), `metadata.name: the Service would be named "hooks.prod-svc" after it`},
		{"dotted, Service named", withService("hooks.prod", "hooks"), ""},
		{"longer than a label value", withService(long, "hooks"), `metadata.name: "` + long + `" cannot be the gateway-name label`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := validate(tc.gw)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("validate: %v, want valid", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("validate: %v, want %q", err, tc.want)
			}
		})
	}
}

func TestSettings(t *testing.T) {
	for _, tc := range []struct {
		s    settings
		want string
	}{
		{settings{InstanceID: "argo-events"}, ""},
		{settings{InstanceID: "argo-events", Namespace: "team-a"}, ""},
		{settings{}, "instanceID: required"},
		{settings{InstanceID: "has space"}, `instanceID: "has space" is not a label value`},
		{settings{InstanceID: "x", Namespace: "Team_A"}, `namespace: "Team_A" is not a namespace name`},
	} {
		err := tc.s.validate()
		if (err == nil) != (tc.want == "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%+v: %v, want %q", tc.s, err, tc.want)
		}
	}
	if got := (options{}).lease(settings{InstanceID: "Team_A.1"}); got != "gateway-controller-team-a.1" {
		t.Errorf("lease name %q", got)
	}
}

func TestParseFlags(t *testing.T) {
	env := map[string]string{"NAMESPACE": "ctl-ns", "CONTROLLER_CONFIG_MAP": "gateway-controller-configmap"}
	o, err := parseFlags([]string{"--watch-namespace", ""}, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if o.namespace != "ctl-ns" || o.configMap != "gateway-controller-configmap" || !o.watchSet || o.instanceIDSet || !o.leaderElect {
		t.Errorf("options %+v", o)
	}
	if _, err := parseFlags([]string{"--workers", "0"}, func(string) string { return "" }); err == nil || !strings.Contains(err.Error(), "--workers: must be at least 1") {
		t.Errorf("--workers 0: %v", err)
	}
	if _, err := parseFlags([]string{"extra"}, func(string) string { return "" }); err == nil {
		t.Error("an argument was accepted")
	}
}

// TestGatewayServersAcceptTheEnvironment: what the controller accepts, every gateway server
// it deploys must accept too, or the pods crash-loop while the Gateway looks fine.
func TestGatewayServersAcceptTheEnvironment(t *testing.T) {
	for _, id := range []string{"argo-events", "Team_A", "ArgoEvents"} {
		s := settings{InstanceID: id}
		if err := s.validate(); err != nil {
			t.Fatalf("instance ID %q: the controller refuses it: %v", id, err)
		}
		o, err := parseFlags([]string{"--instance-id", id}, func(string) string { return "" })
		if err != nil {
			t.Fatal(err)
		}
		vars := map[string]string{}
		for _, v := range gatewayEnv(testGateway().Gateway, s.InstanceID, o.controllerName) {
			vars[v.Name] = v.Value
		}
		if _, err := server.EnvFrom(func(k string) (string, bool) { v, ok := vars[k]; return v, ok }); err != nil {
			t.Errorf("instance ID %q: the gateway server refuses its pod's environment: %v", id, err)
		}
	}
	// A controller name the servers would refuse is refused at the controller's start.
	if _, err := parseFlags([]string{"--controller-name", "Gateway_Controller"}, func(string) string { return "" }); err == nil || !strings.Contains(err.Error(), "--controller-name") {
		t.Errorf("--controller-name Gateway_Controller: %v, want an error naming the flag", err)
	}
}
