package main

import (
	"strings"
	"testing"
)

func TestDecodeGateway(t *testing.T) {
	manifest := func(template, service any) map[string]any {
		spec := map[string]any{"type": "webhook", "eventSource": "sources", "eventProtocol": map[string]any{"type": "HTTP"}}
		if template != nil {
			spec["template"] = template
		}
		if service != nil {
			spec["service"] = service
		}
		return map[string]any{"apiVersion": "argoproj.io/v1alpha1", "kind": "Gateway",
			"metadata": map[string]any{"name": "gw", "namespace": "ns"}, "spec": spec}
	}
	pod := map[string]any{
		"metadata": map[string]any{"name": "gw-pod"},
		"spec": map[string]any{
			"containers": []any{map[string]any{"name": "client", "image": "eventgate/gateway-client"}},
			// A field of another Kubernetes version is ignored, as the typed field did.
			"futureField": true,
		},
	}

	gw, err := decodeGateway(manifest(pod, map[string]any{"spec": map[string]any{"ports": []any{map[string]any{"port": int64(12000)}}}}))
	if err != nil {
		t.Fatal(err)
	}
	if gw.Name != "gw" || gw.template.Name != "gw-pod" || len(gw.template.Spec.Containers) != 1 || gw.template.Spec.Containers[0].Image != "eventgate/gateway-client" {
		t.Errorf("template %+v of %s", gw.template, gw.Name)
	}
	if gw.service == nil || len(gw.service.Spec.Ports) != 1 || gw.service.Spec.Ports[0].Port != 12000 {
		t.Errorf("service %+v", gw.service)
	}

	gw, err = decodeGateway(manifest(pod, nil))
	if err != nil || gw.service != nil {
		t.Errorf("without spec.service: service %+v, error %v", gw.service, err)
	}

	for _, tc := range []struct {
		name              string
		template, service any
		want              string
	}{
		{"template", map[string]any{"spec": map[string]any{"containers": "client"}}, nil, "spec.template is not a pod template"},
		{"service", pod, map[string]any{"spec": map[string]any{"ports": "12000"}}, "spec.service is not a Service"},
	} {
		if _, err := decodeGateway(manifest(tc.template, tc.service)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s of the wrong shape: error %v, want %q", tc.name, err, tc.want)
		}
	}
}
