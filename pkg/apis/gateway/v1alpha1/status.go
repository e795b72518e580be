package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// NodePhase is the state of the gateway, or of one of its event sources (a node).
type NodePhase string

// The phases of v0.10; a v0.10 client may write any of them.
const (
	NodePhaseNew            NodePhase = ""
	NodePhaseRunning        NodePhase = "Running"
	NodePhaseError          NodePhase = "Error"
	NodePhaseCompleted      NodePhase = "Completed"
	NodePhaseRemove         NodePhase = "Remove"
	NodePhaseResourceUpdate NodePhase = "ResourceUpdate"
	// NodePhasePending is an eventgate addition: the gateway-controller made the gateway's
	// Deployment, which is not available yet.
	NodePhasePending NodePhase = "Pending"
)

// GatewayStatus is written by the gateway-controller (the gateway) and the gateway-client
// (one node per event source).
type GatewayStatus struct {
	// +optional
	Phase NodePhase `json:"phase,omitempty"`
	// +optional
	StartedAt metav1.Time `json:"startedAt,omitempty"`
	// Message explains the phase, e.g. why the gateway is in Error.
	// +optional
	Message string `json:"message,omitempty"`
	// Nodes maps a node ID to the state of that event source.
	// +optional
	Nodes map[string]NodeStatus `json:"nodes,omitempty"`
}

// NodeStatus is the state of one event source of the gateway.
type NodeStatus struct {
	// ID is derived from the name, so that it is stable across restarts.
	ID string `json:"id"`
	// Name is the event source's key in the ConfigMap.
	Name        string    `json:"name"`
	DisplayName string    `json:"displayName"`
	Phase       NodePhase `json:"phase"`
	// +optional
	StartedAt metav1.MicroTime `json:"startedAt,omitempty"`
	// +optional
	Message string `json:"message,omitempty"`
	// UpdateTime is when the event source's configuration last changed.
	// +optional
	UpdateTime metav1.MicroTime `json:"updateTime,omitempty"`
}
