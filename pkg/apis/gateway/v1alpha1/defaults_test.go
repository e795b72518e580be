package v1alpha1

import (
	"reflect"
	"testing"
)

func TestDefault(t *testing.T) {
	tests := []struct {
		name     string
		spec     GatewaySpec
		wantSpec GatewaySpec
	}{
		{
			name:     "HTTP without ports",
			spec:     GatewaySpec{EventProtocol: EventProtocol{Type: ProtocolHTTP}},
			wantSpec: GatewaySpec{ProcessorPort: "9330", EventProtocol: EventProtocol{Type: ProtocolHTTP, HTTP: &HTTPProtocol{Port: "9300"}}},
		},
		{
			name:     "HTTP with an empty block",
			spec:     GatewaySpec{EventProtocol: EventProtocol{Type: ProtocolHTTP, HTTP: &HTTPProtocol{}}},
			wantSpec: GatewaySpec{ProcessorPort: "9330", EventProtocol: EventProtocol{Type: ProtocolHTTP, HTTP: &HTTPProtocol{Port: "9300"}}},
		},
		{
			name:     "set ports are kept",
			spec:     GatewaySpec{ProcessorPort: "7000", EventProtocol: EventProtocol{Type: ProtocolHTTP, HTTP: &HTTPProtocol{Port: "8000"}}},
			wantSpec: GatewaySpec{ProcessorPort: "7000", EventProtocol: EventProtocol{Type: ProtocolHTTP, HTTP: &HTTPProtocol{Port: "8000"}}},
		},
		{
			name:     "NATS gets the Standard type and no HTTP block",
			spec:     GatewaySpec{EventProtocol: EventProtocol{Type: ProtocolNATS, NATS: &NATSProtocol{URL: "nats://n:4222"}}},
			wantSpec: GatewaySpec{ProcessorPort: "9330", EventProtocol: EventProtocol{Type: ProtocolNATS, NATS: &NATSProtocol{URL: "nats://n:4222", Type: NATSStandard}}},
		},
		{
			name:     "NATS Streaming is kept",
			spec:     GatewaySpec{EventProtocol: EventProtocol{Type: ProtocolNATS, NATS: &NATSProtocol{Type: NATSStreaming}}},
			wantSpec: GatewaySpec{ProcessorPort: "9330", EventProtocol: EventProtocol{Type: ProtocolNATS, NATS: &NATSProtocol{Type: NATSStreaming}}},
		},
		{
			name:     "NATS without its block is left for Validate",
			spec:     GatewaySpec{EventProtocol: EventProtocol{Type: ProtocolNATS}},
			wantSpec: GatewaySpec{ProcessorPort: "9330", EventProtocol: EventProtocol{Type: ProtocolNATS}},
		},
		{
			name:     "unknown protocol gets no protocol defaults",
			spec:     GatewaySpec{EventProtocol: EventProtocol{Type: "KAFKA"}},
			wantSpec: GatewaySpec{ProcessorPort: "9330", EventProtocol: EventProtocol{Type: "KAFKA"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			gw := &Gateway{Spec: tc.spec}
			gw.Default()
			if !reflect.DeepEqual(gw.Spec, tc.wantSpec) {
				t.Fatalf("Default gave %+v, want %+v", gw.Spec, tc.wantSpec)
			}
			again := gw.DeepCopy()
			again.Default()
			if !reflect.DeepEqual(again, gw) {
				t.Errorf("a second Default changed %+v to %+v", gw.Spec, again.Spec)
			}
		})
	}
}
