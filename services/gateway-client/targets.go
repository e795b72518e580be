package main

import (
	"fmt"
	"sort"
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
// Each gets its retry and dead-letter policy from its watcher's delivery and the flags.
func targets(gw *v1alpha1.Gateway, namespace string, urls sensorURLs, delivery deliveryFlags) ([]dispatch.Target, error) {
	var out []dispatch.Target
	add := func(name string, s dispatch.Sender, err error, watcher *v1alpha1.SensorDelivery, path string) error {
		if err != nil {
			return err
		}
		p, err := policy(delivery.forSensor(name, watcher), path)
		if err != nil {
			return err
		}
		out = append(out, dispatch.Target{Name: name, Sender: s, Policy: p})
		return nil
	}
	flagsPath := func(name string) string { return "the --sensor-* flags of sensor " + name }
	proto := gw.Spec.EventProtocol
	if proto.Type == v1alpha1.ProtocolNATS {
		subject := proto.NATS.Subject
		if subject == "" {
			subject = gw.Name
		}
		s, err := dispatch.NewNATSSender(proto.NATS.URL, subject)
		if err := add("nats:"+subject, s, err, nil, flagsPath("nats:"+subject)); err != nil {
			return nil, err
		}
		return out, unknownSensors(delivery, out)
	}
	port := "9300"
	if proto.HTTP != nil && proto.HTTP.Port != "" {
		port = proto.HTTP.Port
	}
	used := map[string]bool{}
	if w := gw.Spec.Watchers; w != nil {
		for i, sensor := range w.Sensors {
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
			path := v1alpha1.SensorDeliveryPath(i)
			if _, named := delivery.byName[sensor.Name]; named || delivery.all != (v1alpha1.SensorDelivery{}) {
				path += " with " + flagsPath(sensor.Name)
			}
			if err := add(sensor.Name, s, err, sensor.Delivery, path); err != nil {
				return nil, err
			}
		}
	}
	for name, url := range urls {
		if used[name] {
			continue
		}
		s, err := dispatch.NewHTTPSender(url)
		if err := add(name, s, err, nil, flagsPath(name)); err != nil {
			return nil, err
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("the gateway %q has no sensors to deliver to: add spec.watchers.sensors or --sensor URL", gw.Name)
	}
	return out, unknownSensors(delivery, out)
}

// unknownSensors refuses --sensor-* flags for a sensor that is not there: a misspelt name
// would otherwise leave the sensor on the defaults unnoticed.
func unknownSensors(delivery deliveryFlags, tgts []dispatch.Target) error {
	if names := delivery.unknown(tgts); len(names) > 0 {
		sort.Strings(names)
		return fmt.Errorf("--sensor-* flags name %s, which is no sensor of the gateway", strings.Join(names, ", "))
	}
	return nil
}

// strayNames are the names of --sensor NAME=URL flags that match no watcher sensor of gw,
// sorted. Each is delivered to as an extra sensor, which may be meant; but a misspelt name
// also leaves the watcher it meant at its in-cluster address, where nothing may answer:
// the client says so at start. A bare URL's own name (sensor-N) is not one.
func strayNames(gw *v1alpha1.Gateway, urls sensorURLs) (stray, watchers []string) {
	known := map[string]bool{}
	if w := gw.Spec.Watchers; w != nil {
		for _, s := range w.Sensors {
			known[s.Name] = true
			watchers = append(watchers, s.Name)
		}
	}
	for name := range urls {
		if !known[name] && !isPositionalName(name) {
			stray = append(stray, name)
		}
	}
	sort.Strings(stray)
	return stray, watchers
}

// isPositionalName reports whether name is one sensorURLs.Set makes up for a bare URL.
func isPositionalName(name string) bool {
	n, ok := strings.CutPrefix(name, "sensor-")
	if !ok || n == "" {
		return false
	}
	for _, r := range n {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}
