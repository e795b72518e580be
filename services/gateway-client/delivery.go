package main

import (
	"flag"
	"fmt"
	"strconv"
	"strings"

	"github.com/eventgate/eventgate/pkg/apis/gateway/v1alpha1"
	"github.com/eventgate/eventgate/pkg/dispatch"
)

// deliveryFlags are the --sensor-retry, --sensor-dead-letter-sink, ... flags: the fields of
// a watcher's delivery (v1alpha1.SensorDelivery), for sensors given by --sensor and to
// override a Gateway's. Each is [NAME=]VALUE: with NAME for that sensor, over what its
// watcher says; without, for every sensor, under what its watcher says.
type deliveryFlags struct {
	all    v1alpha1.SensorDelivery
	byName map[string]*v1alpha1.SensorDelivery
}

// register adds the flags to fs.
func (d *deliveryFlags) register(fs *flag.FlagSet) {
	d.byName = map[string]*v1alpha1.SensorDelivery{}
	field := func(name, usage string, set func(*v1alpha1.SensorDelivery, string) error) {
		fs.Func(name, "[NAME=]"+usage+"; for the sensor NAME, or without NAME for every sensor its watcher's delivery does not set it for (repeatable)",
			func(v string) error { return d.set(v, set) })
	}
	field("sensor-retry", "N: retries of a failed delivery after its first attempt (default: for ever)", func(sd *v1alpha1.SensorDelivery, v string) error {
		n, err := strconv.ParseInt(v, 10, 32)
		if err != nil {
			return fmt.Errorf("%q is not a number", v)
		}
		r := int32(n)
		sd.Retry = &r
		return nil
	})
	field("sensor-retry-for", "DURATION: no retry starts this long after a delivery's first attempt (default: no bound)",
		func(sd *v1alpha1.SensorDelivery, v string) error { sd.RetryFor = v; return nil })
	field("sensor-backoff-policy", "exponential|linear: how the wait between attempts grows (default exponential)",
		func(sd *v1alpha1.SensorDelivery, v string) error {
			sd.BackoffPolicy = v1alpha1.BackoffPolicy(v)
			return nil
		})
	field("sensor-backoff-delay", "DURATION: the wait before the first retry (default 100ms)",
		func(sd *v1alpha1.SensorDelivery, v string) error { sd.BackoffDelay = v; return nil })
	field("sensor-backoff-max-delay", "DURATION: the longest wait between attempts (default 30s, or the backoff delay if longer)",
		func(sd *v1alpha1.SensorDelivery, v string) error { sd.BackoffMaxDelay = v; return nil })
	field("sensor-dead-letter-sink", "URL: where events the sensor refused for good or did not take within the retries go (default: none, they are dropped)",
		func(sd *v1alpha1.SensorDelivery, v string) error { sd.DeadLetterSink = v; return nil })
}

// set reads one [NAME=]VALUE, checking VALUE as the Gateway's field would be checked.
func (d *deliveryFlags) set(v string, set func(*v1alpha1.SensorDelivery, string) error) error {
	name, value, found := strings.Cut(v, "=")
	// A value of its own may hold '=' (a URL's query) but a name holds no ':' or '/'.
	if !found || strings.ContainsAny(name, ":/") {
		name, value = "", v
	}
	var one v1alpha1.SensorDelivery
	if err := set(&one, value); err != nil {
		return err
	}
	if _, err := one.Policy("delivery"); err != nil {
		// "delivery.<field>: <problem>": the flag package names the flag.
		_, problem, _ := strings.Cut(err.Error(), ": ")
		return fmt.Errorf("%s", problem)
	}
	sd := &d.all
	if name != "" {
		if d.byName[name] == nil {
			d.byName[name] = &v1alpha1.SensorDelivery{}
		}
		sd = d.byName[name]
	}
	return set(sd, value)
}

// forSensor is the delivery of the sensor name whose watcher has watcher (nil for none):
// each field from the flag for name, else from watcher, else from the flag for all.
func (d deliveryFlags) forSensor(name string, watcher *v1alpha1.SensorDelivery) *v1alpha1.SensorDelivery {
	out := d.all
	for _, over := range []*v1alpha1.SensorDelivery{watcher, d.byName[name]} {
		if over == nil {
			continue
		}
		if over.Retry != nil {
			out.Retry = over.Retry
		}
		if over.RetryFor != "" {
			out.RetryFor = over.RetryFor
		}
		if over.BackoffPolicy != "" {
			out.BackoffPolicy = over.BackoffPolicy
		}
		if over.BackoffDelay != "" {
			out.BackoffDelay = over.BackoffDelay
		}
		if over.BackoffMaxDelay != "" {
			out.BackoffMaxDelay = over.BackoffMaxDelay
		}
		if over.DeadLetterSink != "" {
			out.DeadLetterSink = over.DeadLetterSink
		}
	}
	return &out
}

// unknown lists the names the flags give that are no sensor's.
func (d deliveryFlags) unknown(sensors []dispatch.Target) []string {
	known := map[string]bool{}
	for _, t := range sensors {
		known[t.Name] = true
	}
	var out []string
	for name := range d.byName {
		if !known[name] {
			out = append(out, name)
		}
	}
	return out
}

// policy reads sd into the dispatcher's policy; path names its fields in errors.
func policy(sd *v1alpha1.SensorDelivery, path string) (dispatch.Policy, error) {
	pol, err := sd.Policy(path)
	if err != nil {
		return dispatch.Policy{}, err
	}
	p := dispatch.Policy{
		RetryFor: pol.RetryFor,
		Backoff: dispatch.Backoff{Initial: pol.BackoffDelay, Max: pol.BackoffMaxDelay, Factor: dispatch.DefaultBackoff.Factor,
			Jitter: dispatch.DefaultBackoff.Jitter, Linear: pol.Linear},
	}
	if pol.Retries >= 0 {
		p.MaxAttempts = pol.Retries + 1
	}
	if pol.DeadLetterSink != "" {
		if p.DeadLetter, err = dispatch.NewHTTPSender(pol.DeadLetterSink); err != nil {
			return dispatch.Policy{}, fmt.Errorf("%s.deadLetterSink: %w", path, err)
		}
	}
	return p, nil
}
