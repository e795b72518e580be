// +groupName=argoproj.io
// +kubebuilder:object:generate=true

// Package v1alpha1 is the Gateway API (argoproj.io/v1alpha1, kind Gateway): the resource the
// gateway-controller deploys and the gateway-client reads, field for field Argo Events v0.10's.
package v1alpha1
