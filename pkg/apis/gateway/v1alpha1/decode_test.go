package v1alpha1

import (
	"reflect"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"sigs.k8s.io/yaml"
)

type decoder struct {
	name   string
	decode func(data []byte) (*Gateway, error)
}

func decoders(t *testing.T) []decoder {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	universal := func(opts ...serializer.CodecFactoryOptionsMutator) func([]byte) (*Gateway, error) {
		d := serializer.NewCodecFactory(scheme, opts...).UniversalDeserializer()
		return func(data []byte) (*Gateway, error) {
			obj, gvk, err := d.Decode(data, nil, nil)
			if err != nil {
				return nil, err
			}
			if want := SchemeGroupVersion.WithKind(Kind); *gvk != want {
				t.Errorf("decoded kind %v, want %v", *gvk, want)
			}
			gw, ok := obj.(*Gateway)
			if !ok {
				t.Fatalf("decoded a %T, want *Gateway", obj)
			}
			return gw, nil
		}
	}
	return []decoder{
		{"yaml strict", func(data []byte) (*Gateway, error) {
			var gw Gateway
			return &gw, yaml.UnmarshalStrict(data, &gw)
		}},
		{"universal deserializer", universal()},
		{"universal deserializer strict", universal(serializer.EnableStrict)},
	}
}

func TestDecodeExamples(t *testing.T) {
	tests := []struct {
		example       string
		typ, source   string
		containers    [][2]string // name, image
		servicePort   int32       // 0: no service
		sensors       []string
		templateLabel string
	}{
		{
			example: "webhook", typ: "webhook", source: "webhook-event-source",
			containers:  [][2]string{{"gateway-client", "argoproj/gateway-client"}, {"webhook-events", "argoproj/webhook-gateway"}},
			servicePort: 12000, sensors: []string{"webhook-sensor"}, templateLabel: "webhook-gateway",
		},
		{
			example: "calendar", typ: "calendar", source: "calendar-event-source",
			containers: [][2]string{{"gateway-client", "eventgate/gateway-client"}, {"calendar-events", "eventgate/calendar"}},
			sensors:    []string{"calendar-sensor"}, templateLabel: "calendar-gateway",
		},
	}
	for _, d := range decoders(t) {
		for _, tc := range tests {
			t.Run(d.name+"/"+tc.example, func(t *testing.T) {
				gw, err := d.decode(readFile(t, examples[tc.example]))
				if err != nil {
					t.Fatal(err)
				}
				if gw.APIVersion != "argoproj.io/v1alpha1" || gw.Kind != "Gateway" || gw.Name != tc.example+"-gateway" {
					t.Errorf("apiVersion/kind/name = %s/%s/%s", gw.APIVersion, gw.Kind, gw.Name)
				}
				wantLabels := map[string]string{LabelControllerInstanceID: "argo-events", LabelGatewayVersion: GatewayVersion}
				if !reflect.DeepEqual(gw.Labels, wantLabels) {
					t.Errorf("labels = %v, want %v", gw.Labels, wantLabels)
				}
				s := gw.Spec
				if s.Type != tc.typ || s.EventSource != tc.source || s.ProcessorPort != "9330" {
					t.Errorf("type/eventSource/processorPort = %q/%q/%q", s.Type, s.EventSource, s.ProcessorPort)
				}
				if s.EventProtocol.Type != ProtocolHTTP || s.EventProtocol.HTTP == nil || s.EventProtocol.HTTP.Port != "9300" || s.EventProtocol.NATS != nil {
					t.Errorf("eventProtocol = %+v", s.EventProtocol)
				}
				tmpl, svc := podTemplate(t, s), service(t, s)
				var containers [][2]string
				for _, c := range tmpl.Spec.Containers {
					containers = append(containers, [2]string{c.Name, c.Image})
				}
				if !reflect.DeepEqual(containers, tc.containers) {
					t.Errorf("containers = %v, want %v", containers, tc.containers)
				}
				if got := tmpl.Labels["gateway-name"]; got != tc.templateLabel {
					t.Errorf("template label gateway-name = %q, want %q", got, tc.templateLabel)
				}
				if tmpl.Spec.ServiceAccountName != "argo-events-sa" {
					t.Errorf("serviceAccountName = %q", tmpl.Spec.ServiceAccountName)
				}
				switch {
				case tc.servicePort == 0 && svc != nil:
					t.Errorf("service = %+v, want none", svc)
				case tc.servicePort != 0:
					if svc == nil || len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != tc.servicePort ||
						svc.Spec.Ports[0].TargetPort.IntValue() != int(tc.servicePort) ||
						svc.Name != "webhook-gateway-svc" || svc.Spec.Type != "LoadBalancer" {
						t.Errorf("service = %+v, want port %d", svc, tc.servicePort)
					}
				}
				var sensors []string
				if s.Watchers != nil {
					for _, w := range s.Watchers.Sensors {
						sensors = append(sensors, w.Name)
					}
				}
				if !reflect.DeepEqual(sensors, tc.sensors) {
					t.Errorf("sensors = %v, want %v", sensors, tc.sensors)
				}
				gw.Default()
				if err := gw.Validate(); err != nil {
					t.Errorf("the shipped example is invalid: %v", err)
				}
			})
		}
	}
}

// Strict decoding is what catches a misspelt field, which a lenient decoder would drop
// without a word. The pod template and the Service are raw JSON here (GatewaySpec says why):
// what checks them is the controller's decoding and the API server, when the controller
// creates the Deployment and the Service.
func TestDecodeUnknownFieldFails(t *testing.T) {
	manifest := string(readFile(t, examples["webhook"]))
	tests := []struct{ name, old, new, field string }{
		{"spec field", "  watchers:", "  watcher:", "watcher"},
		{"protocol field", `      port: "9300"`, `      prot: "9300"`, "prot"},
		{"v1 field not in v0.10", `  type: "webhook"`, `  type: "webhook"` + "\n  imagePullPolicy: Always", "imagePullPolicy"},
	}
	for _, d := range decoders(t) {
		if d.name == "universal deserializer" {
			continue // lenient by design: what a client reading from the API server uses
		}
		for _, tc := range tests {
			t.Run(d.name+"/"+tc.name, func(t *testing.T) {
				if !strings.Contains(manifest, tc.old) {
					t.Fatalf("example lacks %q", tc.old)
				}
				_, err := d.decode([]byte(strings.Replace(manifest, tc.old, tc.new, 1)))
				if err == nil || !strings.Contains(err.Error(), `unknown field`) || !strings.Contains(err.Error(), tc.field) {
					t.Errorf("decode error = %v, want unknown field %q", err, tc.field)
				}
			})
		}
	}
}
