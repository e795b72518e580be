package v1alpha1

// The ports v0.10 documents; manifests may leave them out.
const (
	DefaultProcessorPort = "9330"
	DefaultHTTPPort      = "9300"
)

// Default fills the fields a manifest may leave out, as the CRD's defaults would on the API
// server: locally read manifests and objects built in code get the same values. Call it
// before Validate. It only fills what is empty, so calling it twice changes nothing.
func (g *Gateway) Default() {
	s := &g.Spec
	if s.ProcessorPort == "" {
		s.ProcessorPort = DefaultProcessorPort
	}
	p := &s.EventProtocol
	switch p.Type {
	case ProtocolHTTP:
		if p.HTTP == nil {
			p.HTTP = &HTTPProtocol{}
		}
		if p.HTTP.Port == "" {
			p.HTTP.Port = DefaultHTTPPort
		}
	case ProtocolNATS:
		// v0.10 required the type; plain NATS is the sensible reading of a missing one.
		if p.NATS != nil && p.NATS.Type == "" {
			p.NATS.Type = NATSStandard
		}
	}
}
