package v1alpha1

import (
	"fmt"
	"strings"
	"testing"
)

// v010Manifest is a Gateway as Argo Events v0.10's examples wrote them, for one gateway
// type: both containers with v0.10's binary names, the spec fields in v0.10's order, and
// eventVersion, which its artifact example carried although its API had no such field.
func v010Manifest(typ, protocol string) string {
	return fmt.Sprintf(`apiVersion: argoproj.io/v1alpha1
kind: Gateway
metadata:
  name: %[1]s-gateway
  labels:
    gateways.argoproj.io/gateway-controller-instanceid: argo-events
    argo-events-gateway-version: v0.10
spec:
  processorPort: "9330"
%[2]s
  template:
    metadata:
      name: "%[1]s-gateway"
      labels:
        gateway-name: "%[1]s-gateway"
    spec:
      containers:
        - name: "gateway-client"
          image: "argoproj/gateway-client"
          imagePullPolicy: "Always"
          command: ["/bin/gateway-client"]
        - name: "%[1]s-events"
          image: "argoproj/%[1]s-gateway"
          imagePullPolicy: "Always"
          command: ["/bin/%[1]s-gateway"]
      serviceAccountName: "argo-events-sa"
  eventSource: "%[1]s-event-source"
  eventVersion: "1.0"
  type: "%[1]s"
  watchers:
    sensors:
      - name: "%[1]s-sensor"
`, typ, protocol)
}

// Every Gateway manifest written for v0.10 loads, for every gateway type and both event
// protocols, through every strict decoder, and is valid.
func TestDecodeV010Manifests(t *testing.T) {
	protocols := map[string]string{
		"HTTP": `  eventProtocol:
    type: "HTTP"
    http:
      port: "9300"`,
		"NATS streaming": `  eventProtocol:
    type: "NATS"
    nats:
      url: "nats://example-nats.argo-events:4222"
      clusterId: "example-stan"
      clientId: "myclient"
      startWithLastReceived: true
      durable: true
      type: "Streaming"`,
	}
	for _, typ := range []string{"calendar", "webhook", "resource", "artifact", "nats", "mqtt", "kafka", "amqp"} {
		for pname, protocol := range protocols {
			manifest := v010Manifest(typ, protocol)
			for _, d := range decoders(t) {
				t.Run(typ+"/"+pname+"/"+d.name, func(t *testing.T) {
					gw, err := d.decode([]byte(manifest))
					if err != nil {
						t.Fatalf("decode: %v", err)
					}
					if gw.Spec.Type != typ || gw.Spec.EventVersion != "1.0" || len(podTemplate(t, gw.Spec).Spec.Containers) != 2 {
						t.Errorf("decoded spec %+v", gw.Spec)
					}
					gw.Default()
					if err := gw.Validate(); err != nil {
						t.Errorf("invalid: %v", err)
					}
				})
			}
		}
	}
	// Still strict for anything else: a field v0.10 never had is refused.
	bad := strings.Replace(v010Manifest("artifact", protocols["HTTP"]), `  eventVersion: "1.0"`, `  eventVersions: "1.0"`, 1)
	for _, d := range decoders(t) {
		if d.name == "universal deserializer" {
			continue // lenient by design
		}
		if _, err := d.decode([]byte(bad)); err == nil || !strings.Contains(err.Error(), "eventVersions") {
			t.Errorf("%s: a misspelt eventVersion decoded: %v", d.name, err)
		}
	}
}
