package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/eventgate/eventgate/pkg/apis/gateway/v1alpha1"
	"github.com/eventgate/eventgate/pkg/server"
)

// Labels and annotations the controller puts on what it makes.
const (
	labelInstanceID = v1alpha1.LabelControllerInstanceID
	// labelGatewayName is v0.10's: the seed's Service selects the gateway pod by it.
	labelGatewayName = "gateway-name"
	// annotationSpecHash is the hash of the child as the controller last wanted it: a
	// changed Gateway gives a new hash, and the child is rewritten.
	annotationSpecHash = "gateways.argoproj.io/spec-hash"
	// annotationGatewaySpec, on the pod template, is the hash of what the gateway-client
	// reads of its Gateway when it starts (the sensors and their delivery policy,
	// eventProtocol, type) and does not watch afterwards: an edit of it rolls the pod, whose
	// client then starts with the new spec. The pod template and the Service are left out:
	// they reach the Deployment and the Service themselves, and a Service edit needs no new
	// pod.
	annotationGatewaySpec = "gateways.argoproj.io/gateway-spec-hash"
)

// gatewayEnv is what every container of a gateway pod gets: v0.10's variables, and the bind
// addresses that keep the gRPC port inside the pod.
func gatewayEnv(gw *v1alpha1.Gateway, instanceID, controllerName string) []corev1.EnvVar {
	return []corev1.EnvVar{
		{Name: server.EnvNamespace, Value: gw.Namespace},
		{Name: server.EnvEventSourceConfigMap, Value: gw.Spec.EventSource},
		{Name: server.EnvName, Value: gw.Name},
		{Name: server.EnvControllerInstanceID, Value: instanceID},
		{Name: server.EnvControllerName, Value: controllerName},
		{Name: server.EnvServerPort, Value: gw.Spec.ProcessorPort},
		// The gRPC port is unauthenticated and the gateway acts with the pod's service
		// account: only the gateway-client, in the same pod, may reach it. Webhook ports
		// (the source listeners) still take traffic on every interface.
		{Name: server.EnvServerHost, Value: "127.0.0.1"},
		{Name: server.EnvSourceHost, Value: ""},
	}
}

// withEnv returns env with every variable of add set to add's value: existing ones are
// replaced in place, the others appended, so that no container ends up with two values.
func withEnv(env []corev1.EnvVar, add []corev1.EnvVar) []corev1.EnvVar {
	out := append([]corev1.EnvVar(nil), env...)
	for _, a := range add {
		replaced := false
		for i := range out {
			if out[i].Name == a.Name {
				out[i] = a
				replaced = true
			}
		}
		if !replaced {
			out = append(out, a)
		}
	}
	return out
}

// childLabels are the labels of the Deployment, its pods and the Service.
func childLabels(gw *v1alpha1.Gateway, instanceID string, extra map[string]string) map[string]string {
	l := make(map[string]string, len(extra)+2)
	for k, v := range extra {
		l[k] = v
	}
	l[labelGatewayName] = gw.Name
	l[labelInstanceID] = instanceID
	return l
}

func ownerRef(gw *v1alpha1.Gateway) metav1.OwnerReference {
	return *metav1.NewControllerRef(gw, v1alpha1.SchemeGroupVersion.WithKind(v1alpha1.Kind))
}

// deploymentName is the template's pod name, as v0.10 named the gateway pod, else the
// Gateway's.
func deploymentName(gw *gateway) string {
	if n := gw.template.Name; n != "" {
		return n
	}
	return gw.Name
}

// desiredDeployment runs the Gateway's pod template as a Deployment of one replica.
func desiredDeployment(gw *gateway, instanceID, controllerName string) *appsv1.Deployment {
	tmpl := *gw.template.DeepCopy()
	tmpl.Name = ""
	tmpl.Namespace = ""
	tmpl.Labels = childLabels(gw.Gateway, instanceID, tmpl.Labels)
	read := gw.Spec.DeepCopy()
	read.Template, read.Service = nil, nil
	if tmpl.Annotations == nil {
		tmpl.Annotations = map[string]string{}
	}
	tmpl.Annotations[annotationGatewaySpec] = hashOf(read)
	env := gatewayEnv(gw.Gateway, instanceID, controllerName)
	for i := range tmpl.Spec.InitContainers {
		tmpl.Spec.InitContainers[i].Env = withEnv(tmpl.Spec.InitContainers[i].Env, env)
	}
	for i := range tmpl.Spec.Containers {
		tmpl.Spec.Containers[i].Env = withEnv(tmpl.Spec.Containers[i].Env, env)
	}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{
			Name:            deploymentName(gw),
			Namespace:       gw.Namespace,
			Labels:          childLabels(gw.Gateway, instanceID, nil),
			OwnerReferences: []metav1.OwnerReference{ownerRef(gw.Gateway)},
		},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			// The selector is immutable: it holds only what never changes for this Gateway.
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{labelGatewayName: gw.Name}},
			// Two gateway pods at once would run every event source twice (a calendar would
			// fire twice, a webhook port would be split): the old pod goes first.
			Strategy: appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType},
			Template: tmpl,
		},
	}
	d.Annotations = map[string]string{annotationSpecHash: hashOf(d.Labels, d.Spec)}
	return d
}

// serviceName is the name of spec.service, or, when it has none, the Gateway's with -svc
// after it, as v0.10 named it.
func serviceName(gw *gateway) string {
	if gw.service.Name != "" {
		return gw.service.Name
	}
	return gw.Name + "-svc"
}

// desiredService is spec.service with the Gateway's name, namespace, labels and owner, or
// nil when the Gateway has none.
func desiredService(gw *gateway, instanceID string) *corev1.Service {
	if gw.service == nil {
		return nil
	}
	in := gw.service.DeepCopy()
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{
			Name:            serviceName(gw),
			Namespace:       gw.Namespace,
			Labels:          childLabels(gw.Gateway, instanceID, in.Labels),
			Annotations:     in.Annotations,
			OwnerReferences: []metav1.OwnerReference{ownerRef(gw.Gateway)},
		},
		Spec: in.Spec,
	}
	if len(s.Spec.Selector) == 0 {
		s.Spec.Selector = map[string]string{labelGatewayName: gw.Name}
	}
	if s.Annotations == nil {
		s.Annotations = map[string]string{}
	}
	s.Annotations[annotationSpecHash] = hashOf(s.Labels, s.Spec)
	return s
}

// hashOf is a short, stable hash of the JSON of vs (maps are sorted by encoding/json).
func hashOf(vs ...any) string {
	h := sha256.New()
	for _, v := range vs {
		if err := json.NewEncoder(h).Encode(v); err != nil {
			panic(fmt.Sprintf("hash %T: %v", v, err)) // API types always encode
		}
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}
