package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// Labels a Gateway carries so that the right controller picks it up; the names are v0.10's,
// which users' manifests already carry.
const (
	// LabelControllerInstanceID names the gateway-controller instance that handles a Gateway.
	LabelControllerInstanceID = "gateways.argoproj.io/gateway-controller-instanceid"
	// LabelGatewayVersion must be GatewayVersion: a controller skips Gateways of other versions.
	LabelGatewayVersion = "argo-events-gateway-version"
	// GatewayVersion is the Argo Events gateway version this API is compatible with.
	GatewayVersion = "v0.10"
)

// There is deliberately no status subresource: v0.10 clients write .status with a plain
// update, which the subresource would silently ignore.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:path=gateways,singular=gateway,shortName=gw,scope=Namespaced
// +kubebuilder:printcolumn:name="Type",type=string,JSONPath=`.spec.type`
// +kubebuilder:printcolumn:name="Event Source",type=string,JSONPath=`.spec.eventSource`
// +kubebuilder:printcolumn:name="Protocol",type=string,JSONPath=`.spec.eventProtocol.type`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`

// Gateway runs one gateway: a gateway server of some type plus the gateway-client that reads
// its event sources from a ConfigMap and dispatches the events to the watchers.
type Gateway struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec GatewaySpec `json:"spec"`
	// +optional
	Status GatewayStatus `json:"status,omitempty"`
}

// GatewayList is a list of Gateways.
//
// +kubebuilder:object:root=true
type GatewayList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`

	Items []Gateway `json:"items"`
}

// GatewaySpec is the desired gateway. The JSON names are Argo Events v0.10's.
type GatewaySpec struct {
	// Type of the gateway, e.g. webhook or calendar; it becomes the CloudEvents type.
	// +kubebuilder:validation:MinLength=1
	Type string `json:"type"`

	// EventSource is the ConfigMap holding the event sources, one per key: its name in the
	// Gateway's namespace, or namespace/name.
	// +kubebuilder:validation:MinLength=1
	EventSource string `json:"eventSource"`

	// ProcessorPort is the gateway server's gRPC port (GATEWAY_SERVER_PORT).
	// +optional
	// +kubebuilder:default="9330"
	ProcessorPort string `json:"processorPort,omitempty"`

	// EventProtocol is how the gateway-client delivers events to the watchers.
	EventProtocol EventProtocol `json:"eventProtocol"`

	// Template and Service are schemaless in the CRD, as in v0.10's (which had no schema): the
	// API server keeps every field a manifest has, where a full schema would prune the fields
	// of other Kubernetes versions, and still validates both when the controller creates them.
	// Here too they stay as the manifest wrote them: only the gateway-controller reads them,
	// as a core/v1 PodTemplateSpec and Service. Those Go types would link k8s.io/api/core/v1,
	// the largest package of client-go's tree, into every binary that reads a Gateway; in the
	// gateway-client that was 1.2 MiB of its RSS under load.

	// Template is the gateway pod (a PodTemplateSpec): the gateway-client and the gateway
	// server containers.
	// +optional
	// +kubebuilder:validation:Schemaless
	// +kubebuilder:validation:Type=object
	// +kubebuilder:pruning:PreserveUnknownFields
	Template *runtime.RawExtension `json:"template,omitempty"`

	// Service exposes the gateway pod (a Service: its metadata and spec are used), e.g. for
	// webhooks.
	// +optional
	// +kubebuilder:validation:Schemaless
	// +kubebuilder:validation:Type=object
	// +kubebuilder:pruning:PreserveUnknownFields
	Service *runtime.RawExtension `json:"service,omitempty"`

	// Watchers receive the events; an HTTP gateway needs at least one.
	// +optional
	Watchers *NotificationWatchers `json:"watchers,omitempty"`

	// EventVersion is accepted and not used: v0.10's example manifests (the artifact gateway's)
	// carry it, its API had no such field, and its lenient decoding ignored it. Strict
	// decoding here would otherwise refuse those manifests.
	// +optional
	EventVersion string `json:"eventVersion,omitempty"`
}

// NotificationWatchers are the components the gateway dispatches its events to.
type NotificationWatchers struct {
	// +optional
	Gateways []GatewayNotificationWatcher `json:"gateways,omitempty"`
	// +optional
	Sensors []SensorNotificationWatcher `json:"sensors,omitempty"`
}

// GatewayNotificationWatcher is another gateway that receives this gateway's events over
// HTTP, at http://<name>.<namespace>:<port><endpoint>.
type GatewayNotificationWatcher struct {
	Name string `json:"name"`
	Port string `json:"port"`
	// Endpoint is the path events are POSTed to.
	Endpoint string `json:"endpoint"`
	// Namespace defaults to the Gateway's.
	// +optional
	Namespace string `json:"namespace,omitempty"`
}

// SensorNotificationWatcher is a sensor that receives this gateway's events.
type SensorNotificationWatcher struct {
	Name string `json:"name"`
	// Namespace defaults to the Gateway's.
	// +optional
	Namespace string `json:"namespace,omitempty"`
	// Delivery is the sensor's retry and dead-letter policy.
	// +optional
	Delivery *SensorDelivery `json:"delivery,omitempty"`
}
