package v1alpha1

import (
	"strings"
	"testing"
)

func TestEventSourceRef(t *testing.T) {
	tests := []struct {
		name, ref, defaultNS string
		wantNS, wantName     string
		wantErr              string
	}{
		{name: "name in the default namespace", ref: "webhook-event-source", defaultNS: "argo-events", wantNS: "argo-events", wantName: "webhook-event-source"},
		{name: "namespace/name", ref: "other/webhook-event-source", defaultNS: "argo-events", wantNS: "other", wantName: "webhook-event-source"},
		{name: "no default namespace (local mode)", ref: "cm", wantName: "cm"},
		{name: "dotted name", ref: "ns/event.sources", wantNS: "ns", wantName: "event.sources"},
		{name: "empty", ref: "", wantErr: "spec.eventSource: required"},
		{name: "empty namespace", ref: "/cm", wantErr: `spec.eventSource: "/cm": want a ConfigMap name or namespace/name`},
		{name: "empty name", ref: "ns/", wantErr: `spec.eventSource: "ns/": want a ConfigMap name or namespace/name`},
		{name: "two slashes", ref: "a/b/c", wantErr: `spec.eventSource: "a/b/c": want a ConfigMap name or namespace/name`},
		{name: "namespace with a dot", ref: "my.ns/cm", wantErr: `spec.eventSource: "my.ns/cm": namespace "my.ns": must not contain dots`},
		{name: "bad namespace", ref: "My_NS/cm", wantErr: `spec.eventSource: "My_NS/cm": namespace "My_NS": a lowercase RFC 1123 label`},
		{name: "bad name", ref: "ns/Event_Source", wantErr: `spec.eventSource: "ns/Event_Source": ConfigMap name "Event_Source": a lowercase RFC 1123 subdomain`},
		{name: "bad name without namespace", ref: "Event Source", wantErr: `ConfigMap name "Event Source"`},
		{name: "name too long", ref: strings.Repeat("a", 254), wantErr: "must be no more than 253 characters"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := GatewaySpec{EventSource: tc.ref}
			ns, name, err := s.EventSourceRef(tc.defaultNS)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("EventSourceRef(%q) error = %v, want it to contain %q", tc.ref, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if ns != tc.wantNS || name != tc.wantName {
				t.Errorf("EventSourceRef(%q) = %q, %q, want %q, %q", tc.ref, ns, name, tc.wantNS, tc.wantName)
			}
		})
	}
}
