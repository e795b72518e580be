package main

import (
	"encoding/json"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/eventgate/eventgate/pkg/apis/gateway/v1alpha1"
)

// gateway is a Gateway as the controller reads it: the API object, with the pod template and
// the Service decoded from the JSON the API keeps them in (v1alpha1.GatewaySpec says why).
type gateway struct {
	*v1alpha1.Gateway
	template corev1.PodTemplateSpec
	service  *corev1.Service // nil when the Gateway has none
}

// decodeGateway decodes a Gateway from its unstructured form. The template and the Service
// are decoded as the rest is, ignoring fields they do not know, as when they were typed
// fields of the API: a manifest written for another Kubernetes version still runs.
func decodeGateway(obj map[string]any) (*gateway, error) {
	gw := &gateway{Gateway: &v1alpha1.Gateway{}}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj, gw.Gateway); err != nil {
		return nil, err
	}
	if raw := rawJSON(gw.Spec.Template); raw != nil {
		if err := json.Unmarshal(raw, &gw.template); err != nil {
			return nil, fmt.Errorf("spec.template is not a pod template: %w", err)
		}
	}
	if raw := rawJSON(gw.Spec.Service); raw != nil {
		gw.service = &corev1.Service{}
		if err := json.Unmarshal(raw, gw.service); err != nil {
			return nil, fmt.Errorf("spec.service is not a Service: %w", err)
		}
	}
	return gw, nil
}

// rawJSON is what a manifest wrote for a raw field, or nil for nothing. A null in the
// manifest never gets here: decoding leaves the field's pointer nil.
func rawJSON(r *runtime.RawExtension) []byte {
	if r == nil || len(r.Raw) == 0 {
		return nil
	}
	return r.Raw
}
