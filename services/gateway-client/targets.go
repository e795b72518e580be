package main

import (
	"fmt"
	"strings"

	"github.com/eventgate/eventgate/pkg/apis/gateway/v1alpha1"
	"github.com/eventgate/eventgate/pkg/dispatch"
)

// sensorURLs maps a watcher name to the URL that reaches it, from --sensor NAME=URL flags;
// a bare URL is a sensor of its own, named after its position.
type sensorURLs map[string]string

func (s sensorURLs) String() string { return fmt.Sprint(map[string]string(s)) }

func (s sensorURLs) Set(v string) error {
	name, url, found := strings.Cut(v, "=")
	if !found || strings.Contains(name, "/") {
		name, url = fmt.Sprintf("sensor-%d", len(s)+1), v
	}
	if !strings.HasPrefix(url, "http://") && !strings.HasPrefix(url, "https://") {
		return fmt.Errorf("%q is not an http(s) URL", url)
	}
	s[name] = url
	return nil
}

// targets lists where the gateway's events go. Over HTTP: each watcher sensor, at the URL
// given for it or else at its in-cluster service address as v0.10 addressed it, plus any
// extra --sensor URL. Over NATS: the configured subject (the gateway's name by default).
func targets(gw *v1alpha1.Gateway, namespace string, urls sensorURLs) ([]dispatch.Target, error) {
	var out []dispatch.Target
	add := func(name string, s dispatch.Sender, err error) error {
		if err != nil {
			return err
		}
		out = append(out, dispatch.Target{Name: name, Sender: s})
		return nil
	}
	proto := gw.Spec.EventProtocol
	if proto.Type == v1alpha1.ProtocolNATS {
		subject := proto.NATS.Subject
		if subject == "" {
			subject = gw.Name
		}
		s, err := dispatch.NewNATSSender(proto.NATS.URL, subject)
		return out, add("nats:"+subject, s, err)
	}
	port := "9300"
	if proto.HTTP != nil && proto.HTTP.Port != "" {
		port = proto.HTTP.Port
	}
	used := map[string]bool{}
	if w := gw.Spec.Watchers; w != nil {
		for _, sensor := range w.Sensors {
			url, ok := urls[sensor.Name]
			if !ok {
				ns := sensor.Namespace
				if ns == "" {
					ns = namespace
				}
				url = fmt.Sprintf("http://%s-svc.%s.svc.cluster.local:%s/", sensor.Name, ns, port)
			}
			used[sensor.Name] = true
			s, err := dispatch.NewHTTPSender(url)
			if err := add(sensor.Name, s, err); err != nil {
				return nil, err
			}
		}
	}
	for name, url := range urls {
		if used[name] {
			continue
		}
		s, err := dispatch.NewHTTPSender(url)
		if err := add(name, s, err); err != nil {
			return nil, err
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("the gateway %q has no sensors to deliver to: add spec.watchers.sensors or --sensor URL", gw.Name)
	}
	return out, nil
}
