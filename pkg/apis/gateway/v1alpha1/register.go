package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// The names Argo Events v0.10 registered, so that its manifests, clients and RBAC rules keep
// working against ours.
const (
	GroupName = "argoproj.io"
	Kind      = "Gateway"
	Plural    = "gateways"
)

// SchemeGroupVersion is the group and version of every type in this package.
var SchemeGroupVersion = schema.GroupVersion{Group: GroupName, Version: "v1alpha1"}

var (
	// SchemeBuilder registers Gateway and GatewayList; clients add it to their scheme.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)
	// AddToScheme adds this package's types to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

// Resource qualifies a resource name of this version with the group, as listers and
// errors want it: Resource("gateways").
func Resource(resource string) schema.GroupResource {
	return SchemeGroupVersion.WithResource(resource).GroupResource()
}

func addKnownTypes(scheme *runtime.Scheme) error {
	scheme.AddKnownTypes(SchemeGroupVersion, &Gateway{}, &GatewayList{})
	metav1.AddToGroupVersion(scheme, SchemeGroupVersion)
	return nil
}
