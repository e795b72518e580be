package v1alpha1

// EventProtocolType is how events travel from the gateway-client to the watchers.
type EventProtocolType string

// The protocols v0.10 knew, spelled as its manifests spell them.
const (
	ProtocolHTTP EventProtocolType = "HTTP"
	ProtocolNATS EventProtocolType = "NATS"
)

// NATSType tells plain NATS from NATS Streaming (STAN), as v0.10 did.
type NATSType string

// The NATS connection types of v0.10.
const (
	NATSStandard  NATSType = "Standard"
	NATSStreaming NATSType = "Streaming"
)

// EventProtocol selects the dispatch protocol and holds its settings; only the block of the
// selected type is used.
type EventProtocol struct {
	// +kubebuilder:validation:Enum=HTTP;NATS
	Type EventProtocolType `json:"type"`
	// +optional
	HTTP *HTTPProtocol `json:"http,omitempty"`
	// +optional
	NATS *NATSProtocol `json:"nats,omitempty"`
}

// HTTPProtocol delivers each event as an HTTP POST to every watcher.
type HTTPProtocol struct {
	// Port the watchers (sensors) listen on for events.
	// +optional
	// +kubebuilder:default="9300"
	Port string `json:"port,omitempty"`
}

// NATSProtocol publishes each event to a NATS subject. The subscription options are v0.10's
// (they matter to NATS Streaming subscribers); Subject is eventgate's addition.
type NATSProtocol struct {
	// URL of the NATS server, e.g. nats://nats.argo-events:4222.
	URL string `json:"url"`
	// Subject events are published to; empty means the gateway-client's default subject.
	// +optional
	Subject string `json:"subject,omitempty"`
	// Type is Standard (the default) or Streaming.
	// +optional
	Type NATSType `json:"type,omitempty"`
	// ClusterID of the NATS Streaming cluster; required for Streaming.
	// +optional
	ClusterID string `json:"clusterId,omitempty"`
	// ClientID to connect to NATS Streaming with; required for Streaming.
	// +optional
	ClientID string `json:"clientId,omitempty"`
	// +optional
	StartWithLastReceived bool `json:"startWithLastReceived,omitempty"`
	// +optional
	DeliverAllAvailable bool `json:"deliverAllAvailable,omitempty"`
	// +optional
	Durable bool `json:"durable,omitempty"`
	// +optional
	StartAtSequence string `json:"startAtSequence,omitempty"`
	// +optional
	StartAtTime string `json:"startAtTime,omitempty"`
	// +optional
	StartAtTimeDelta string `json:"startAtTimeDelta,omitempty"`
}
