package supervisor

import (
	"crypto/sha256"
	"encoding/hex"
	"sort"
	"time"

	"github.com/eventgate/eventgate/protos/gateways"
)

// Source is one configured event source: a ConfigMap key and its value.
type Source struct {
	Name    string
	Data    string
	Version string
}

// ID identifies this exact configuration, as v0.10 did: a hash of name and data, so an edit
// of a source is a stop of the old one and a start of the new one.
func (s Source) ID() string {
	sum := sha256.Sum256([]byte(s.Name + "\x00" + s.Data))
	return hex.EncodeToString(sum[:8])
}

func (s Source) proto() *gateways.EventSource {
	return &gateways.EventSource{Id: s.ID(), Name: s.Name, Data: s.Data, Version: s.Version}
}

// SourcesFrom turns ConfigMap data into sources, in a stable order.
func SourcesFrom(data map[string]string, version string) []Source {
	out := make([]Source, 0, len(data))
	for name, value := range data {
		out = append(out, Source{Name: name, Data: value, Version: version})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Phase is a source's state, as in the Gateway status nodes of v0.10.
type Phase string

const (
	PhaseRunning   Phase = "Running"
	PhaseError     Phase = "Error"
	PhaseCompleted Phase = "Completed"
)

// Status is what the supervisor knows of one source. The client's /status serves it as
// JSON, with the camelCase keys of Kubernetes objects; a time not yet reached (StartedAt
// of a source that never started) has no key at all.
type Status struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Phase   Phase  `json:"phase"`
	Message string `json:"message,omitempty"`
	// Server names the gateway server the source runs on, while it runs.
	Server string `json:"server,omitempty"`
	// Invalid is set when every server refused the source: it is retried only when its
	// config changes.
	Invalid bool `json:"invalid,omitempty"`
	// ConfiguredAt is when this config of the source was applied.
	ConfiguredAt time.Time `json:"configuredAt,omitzero"`
	// StartedAt is when the source last started on a server; zero until it has.
	StartedAt time.Time `json:"startedAt,omitzero"`
	UpdatedAt time.Time `json:"updatedAt,omitzero"`
}
