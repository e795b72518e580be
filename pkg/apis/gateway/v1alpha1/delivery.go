package v1alpha1

import (
	"fmt"
	"net/url"
	"time"
)

// SensorDelivery is what the gateway-client does with an event a sensor does not take, in
// the manner of Knative's delivery spec. Every field is optional: a sensor without it is
// retried for ever on retryable answers, so that an outage holds the event stream back
// rather than dropping events, and an event it refuses for good is dropped.
//
// Retryable answers are network errors, timeouts, 5xx, 404, 409 and 429; any other 4xx is
// refused for good, and never retried. An event that is refused for good, or whose retries
// are used up, goes to DeadLetterSink if there is one, else it is dropped (logged and
// counted); either way it is acknowledged upstream as dropped, and the events after it in
// its ordering key move on.
type SensorDelivery struct {
	// Retry is how many times a delivery is retried after its first attempt, at most.
	// Absent: for ever.
	// +optional
	// +kubebuilder:validation:Minimum=0
	Retry *int32 `json:"retry,omitempty"`

	// RetryFor bounds the time spent retrying (a Go duration, e.g. 10m): no retry starts
	// once it would begin later than RetryFor after the first attempt. Absent: no bound.
	// +optional
	RetryFor string `json:"retryFor,omitempty"`

	// BackoffPolicy is how the wait between attempts grows: exponential (BackoffDelay,
	// doubled after each retry) or linear (BackoffDelay times the retry's number). Default
	// exponential.
	// +optional
	// +kubebuilder:validation:Enum=exponential;linear
	BackoffPolicy BackoffPolicy `json:"backoffPolicy,omitempty"`

	// BackoffDelay is the wait before the first retry (a Go duration). Default 100ms.
	// +optional
	BackoffDelay string `json:"backoffDelay,omitempty"`

	// BackoffMaxDelay caps the wait between attempts (a Go duration). Default 30s, or
	// BackoffDelay if that is longer.
	// +optional
	BackoffMaxDelay string `json:"backoffMaxDelay,omitempty"`

	// DeadLetterSink is an absolute http(s) URL that receives, as a CloudEvent, each event
	// the sensor refused for good or whose retries were used up, with extensions saying why
	// (knativeerrordest, knativeerrorcode, knativeerrordata) and how often it was tried
	// (eventgateattempts). The sink itself is retried until it takes the event.
	// +optional
	DeadLetterSink string `json:"deadLetterSink,omitempty"`
}

// BackoffPolicy is SensorDelivery.BackoffPolicy.
type BackoffPolicy string

// The backoff policies, as Knative spells them.
const (
	BackoffExponential BackoffPolicy = "exponential"
	BackoffLinear      BackoffPolicy = "linear"
)

// The defaults of a SensorDelivery's fields.
const (
	DefaultBackoffDelay    = 100 * time.Millisecond
	DefaultBackoffMaxDelay = 30 * time.Second
)

// DeliveryPolicy is a SensorDelivery read: durations parsed and defaults filled.
//
// +kubebuilder:object:generate=false
type DeliveryPolicy struct {
	// Retries is how many retries a delivery gets, or -1 for no limit.
	Retries int
	// RetryFor is the retry budget, 0 for none.
	RetryFor        time.Duration
	Linear          bool
	BackoffDelay    time.Duration
	BackoffMaxDelay time.Duration
	DeadLetterSink  string
}

// Policy reads d (nil is every default). path names d's fields in the error, e.g.
// "spec.watchers.sensors[0].delivery"; the error lists every problem, one
// "<path>.<field>: <problem>" each.
func (d *SensorDelivery) Policy(path string) (DeliveryPolicy, error) {
	var p problems
	pol := d.policy(path, &p)
	return pol, p.err()
}

func (d *SensorDelivery) policy(path string, p *problems) DeliveryPolicy {
	pol := DeliveryPolicy{Retries: -1, BackoffDelay: DefaultBackoffDelay, BackoffMaxDelay: DefaultBackoffMaxDelay}
	if d == nil {
		return pol
	}
	if d.Retry != nil {
		if *d.Retry < 0 {
			p.add(path+".retry", "must be 0 or more (retries after the first attempt; leave it out to retry for ever), got %d", *d.Retry)
		}
		pol.Retries = int(*d.Retry)
	}
	pol.RetryFor = p.duration(path+".retryFor", d.RetryFor, 0)
	switch d.BackoffPolicy {
	case "", BackoffExponential:
	case BackoffLinear:
		pol.Linear = true
	default:
		p.add(path+".backoffPolicy", "must be exponential or linear, got %q", d.BackoffPolicy)
	}
	pol.BackoffDelay = p.duration(path+".backoffDelay", d.BackoffDelay, DefaultBackoffDelay)
	pol.BackoffMaxDelay = p.duration(path+".backoffMaxDelay", d.BackoffMaxDelay, max(DefaultBackoffMaxDelay, pol.BackoffDelay))
	if d.BackoffMaxDelay != "" && pol.BackoffMaxDelay < pol.BackoffDelay {
		p.add(path+".backoffMaxDelay", "must not be shorter than backoffDelay (%s), got %s", pol.BackoffDelay, pol.BackoffMaxDelay)
	}
	if d.DeadLetterSink != "" {
		u, err := url.Parse(d.DeadLetterSink)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			p.add(path+".deadLetterSink", "must be an absolute http(s) URL, got %q", d.DeadLetterSink)
		}
		pol.DeadLetterSink = d.DeadLetterSink
	}
	return pol
}

// duration parses a positive Go duration, def when s is empty.
func (p *problems) duration(path, s string, def time.Duration) time.Duration {
	if s == "" {
		return def
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		p.add(path, "must be a positive Go duration, e.g. 500ms or 10m, got %q", s)
		return def
	}
	return d
}

// SensorDeliveryPath is where the delivery of the i-th sensor watcher is in a Gateway.
func SensorDeliveryPath(i int) string {
	return fmt.Sprintf("spec.watchers.sensors[%d].delivery", i)
}
