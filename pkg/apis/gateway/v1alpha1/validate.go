package v1alpha1

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Validate reports every problem of a defaulted Gateway in one error, each as
// "<field path>: <problem>", so that a user fixes a manifest in one round. The rules are
// v0.10's (its controller refused the same Gateways), with clearer messages.
func (g *Gateway) Validate() error {
	var p problems
	if g.Name == "" {
		p.add("metadata.name", "required")
	}
	s := &g.Spec
	if s.Type == "" {
		p.add("spec.type", "required: the gateway type, e.g. webhook")
	}
	if _, _, err := s.EventSourceRef(""); err != nil {
		p = append(p, err.Error())
	}
	p.port("spec.processorPort", s.ProcessorPort)

	switch ep := s.EventProtocol; ep.Type {
	case ProtocolHTTP:
		if ep.HTTP == nil {
			p.add("spec.eventProtocol.http", "required for type HTTP")
		} else {
			p.port("spec.eventProtocol.http.port", ep.HTTP.Port)
		}
		// Over HTTP the client posts to each watcher: without one, every event is lost.
		if s.Watchers == nil || len(s.Watchers.Sensors)+len(s.Watchers.Gateways) == 0 {
			p.add("spec.watchers", "required: a Gateway that dispatches over HTTP needs at least one sensor or gateway to send events to")
		}
	case ProtocolNATS:
		p.nats(ep.NATS)
	case "":
		p.add("spec.eventProtocol.type", "required: HTTP or NATS")
	default:
		p.add("spec.eventProtocol.type", "must be HTTP or NATS, got %q", ep.Type)
	}
	p.watchers(s.Watchers)
	return p.err()
}

func (p *problems) nats(n *NATSProtocol) {
	const path = "spec.eventProtocol.nats"
	if n == nil {
		p.add(path, "required for type NATS")
		return
	}
	if n.URL == "" {
		p.add(path+".url", "required for type NATS")
	}
	switch n.Type {
	case NATSStandard:
	case NATSStreaming:
		if n.ClusterID == "" {
			p.add(path+".clusterId", "required for type Streaming")
		}
		if n.ClientID == "" {
			p.add(path+".clientId", "required for type Streaming")
		}
	default:
		p.add(path+".type", "must be Standard or Streaming, got %q", n.Type)
	}
}

func (p *problems) watchers(w *NotificationWatchers) {
	if w == nil {
		return
	}
	for i, s := range w.Sensors {
		if s.Name == "" {
			p.add(fmt.Sprintf("spec.watchers.sensors[%d].name", i), "required")
		}
		s.Delivery.policy(SensorDeliveryPath(i), p)
	}
	for i, g := range w.Gateways {
		path := fmt.Sprintf("spec.watchers.gateways[%d]", i)
		if g.Name == "" {
			p.add(path+".name", "required")
		}
		if g.Endpoint == "" {
			p.add(path+".endpoint", "required: the path events are POSTed to, e.g. /")
		}
		p.port(path+".port", g.Port)
	}
}

// problems collects "<path>: <problem>" lines.
type problems []string

func (p *problems) add(path, format string, args ...any) {
	*p = append(*p, path+": "+fmt.Sprintf(format, args...))
}

func (p *problems) port(path, port string) {
	if port == "" {
		p.add(path, "required")
		return
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		p.add(path, "must be a port number (1-65535), got %q", port)
	}
}

func (p problems) err() error {
	if len(p) == 0 {
		return nil
	}
	return errors.New(strings.Join(p, "; "))
}
