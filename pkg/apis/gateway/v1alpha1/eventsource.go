package v1alpha1

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// EventSourceRef resolves spec.eventSource to the ConfigMap's namespace and name: "name" is
// looked up in defaultNS (the Gateway's namespace; it may be empty locally), "ns/name" in ns.
func (s *GatewaySpec) EventSourceRef(defaultNS string) (ns, name string, err error) {
	ref := s.EventSource
	if ref == "" {
		return "", "", fmt.Errorf("spec.eventSource: required: the ConfigMap of event sources, as name or namespace/name")
	}
	ns, name = defaultNS, ref
	if before, after, ok := strings.Cut(ref, "/"); ok {
		if before == "" || after == "" || strings.Contains(after, "/") {
			return "", "", fmt.Errorf("spec.eventSource: %q: want a ConfigMap name or namespace/name", ref)
		}
		ns, name = before, after
		if problems := validation.IsDNS1123Label(ns); len(problems) > 0 {
			return "", "", fmt.Errorf("spec.eventSource: %q: namespace %q: %s", ref, ns, strings.Join(problems, "; "))
		}
	}
	if problems := validation.IsDNS1123Subdomain(name); len(problems) > 0 {
		return "", "", fmt.Errorf("spec.eventSource: %q: ConfigMap name %q: %s", ref, name, strings.Join(problems, "; "))
	}
	return ns, name, nil
}
