package main

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/eventgate/eventgate/pkg/config"
)

// Config is one resource event source: every Argo Events v0.10 field (namespace, group,
// version, kind, type, filter), plus resource, eventTypes, filter.labelSelector,
// filter.afterStart, includeExisting and backoff.
type Config struct {
	// Namespace is where the objects are watched; empty watches every namespace.
	Namespace string `json:"namespace,omitempty"`
	// Group and Version are the objects' API group ("" for the core group) and version.
	Group   string `json:"group,omitempty"`
	Version string `json:"version"`
	// Kind names the objects (ConfigMap), resolved to their resource through discovery;
	// Resource names the resource itself (configmaps). One of the two is required.
	Kind     string `json:"kind,omitempty"`
	Resource string `json:"resource,omitempty"`
	// Type is v0.10's one event type (ADDED, MODIFIED or DELETED; empty for all), EventTypes
	// v1's list (ADD, UPDATE, DELETE, or v0.10's names). Use one of the two.
	Type       string   `json:"type,omitempty"`
	EventTypes []string `json:"eventTypes,omitempty"`
	// Filter drops the events of objects that do not match.
	Filter *Filter `json:"filter,omitempty"`
	// IncludeExisting gives an ADDED event for each object that exists when the source
	// starts. Without it (the default) only changes made after the start are events, so a
	// restart of the gateway or of the source replays nothing.
	IncludeExisting bool `json:"includeExisting,omitempty"`
	// Backoff spaces the attempts to start the watch when it cannot (RBAC, unknown kind,
	// API server unreachable).
	Backoff config.Backoff `json:"backoff,omitempty"`
}

// Filter is v0.10's filter block plus labelSelector and afterStart.
type Filter struct {
	// Prefix the object's name must start with.
	Prefix string `json:"prefix,omitempty"`
	// Labels and Annotations the object must carry, with these exact values. Labels are also
	// the API server's label selector, so non-matching objects are not even sent.
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
	// CreatedBy (RFC 3339) passes objects created at or before that time.
	CreatedBy string `json:"createdBy,omitempty"`
	// LabelSelector is a Kubernetes label selector ("app in (a, b), !canary"), applied by the
	// API server together with Labels.
	LabelSelector string `json:"labelSelector,omitempty"`
	// AfterStart passes only objects created after the source started.
	AfterStart bool `json:"afterStart,omitempty"`
}

// Event types, as v0.10 named them (watch.EventType).
const (
	added    = "ADDED"
	modified = "MODIFIED"
	deleted  = "DELETED"
)

// eventTypeNames maps every accepted spelling to the event type: v0.10's and v1's.
var eventTypeNames = map[string]string{
	added: added, modified: modified, deleted: deleted,
	"ADD": added, "UPDATE": modified, "DELETE": deleted,
}

// Validate reports every problem of c with its field path. It is syntactic: whether the
// kind exists and the gateway may watch it is only known at start, from the API server.
func (c *Config) Validate() error {
	var errs config.Errors
	if c.Namespace != "" {
		for _, msg := range validation.IsDNS1123Label(c.Namespace) {
			errs.Addf("resource.namespace", "%q: %s", c.Namespace, msg)
		}
	}
	if c.Group != "" {
		for _, msg := range validation.IsDNS1123Subdomain(c.Group) {
			errs.Addf("resource.group", "%q: %s", c.Group, msg)
		}
	}
	switch {
	case c.Version == "":
		errs.Addf("resource.version", "is required")
	case !isName(c.Version):
		errs.Addf("resource.version", "%q is not an API version such as v1", c.Version)
	}
	switch {
	case c.Kind != "" && c.Resource != "":
		errs.Addf("resource.kind", "use either kind or resource, not both")
	case c.Kind == "" && c.Resource == "":
		errs.Addf("resource.kind", "is required (or resource)")
	case c.Kind != "" && !isName(c.Kind):
		errs.Addf("resource.kind", "%q is not a kind such as ConfigMap", c.Kind)
	case c.Resource != "":
		for _, msg := range validation.IsDNS1123Subdomain(c.Resource) {
			errs.Addf("resource.resource", "%q: %s", c.Resource, msg)
		}
	}
	if c.Type != "" {
		if _, ok := eventTypeNames[c.Type]; !ok {
			errs.Addf("resource.type", "unknown event type %q, want ADDED, MODIFIED or DELETED", c.Type)
		}
		if len(c.EventTypes) > 0 {
			errs.Addf("resource.eventTypes", "use either type or eventTypes, not both")
		}
	}
	for i, t := range c.EventTypes {
		if _, ok := eventTypeNames[t]; !ok {
			errs.Addf(config.Index("resource.eventTypes", i), "unknown event type %q, want ADD, UPDATE or DELETE (or ADDED, MODIFIED, DELETED)", t)
		}
	}
	c.Filter.validate(&errs, "resource.filter")
	c.Backoff.Validate(&errs, "resource.backoff")
	return errs.Err()
}

func (f *Filter) validate(errs *config.Errors, path string) {
	if f == nil {
		return
	}
	for _, k := range slices.Sorted(maps.Keys(f.Labels)) {
		for _, msg := range validation.IsQualifiedName(k) {
			errs.Addf(path+".labels", "key %q: %s", k, msg)
		}
		for _, msg := range validation.IsValidLabelValue(f.Labels[k]) {
			errs.Addf(path+".labels."+k, "%q: %s", f.Labels[k], msg)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(f.Annotations)) {
		for _, msg := range validation.IsQualifiedName(k) {
			errs.Addf(path+".annotations", "key %q: %s", k, msg)
		}
	}
	if f.CreatedBy != "" {
		if _, err := time.Parse(time.RFC3339, f.CreatedBy); err != nil {
			errs.Addf(path+".createdBy", "%q is not an RFC 3339 time such as 2019-03-01T10:00:00Z", f.CreatedBy)
		}
	}
	if f.LabelSelector != "" {
		if _, err := labels.Parse(f.LabelSelector); err != nil {
			errs.Addf(path+".labelSelector", "%v", err)
		}
	}
}

// isName accepts what kinds and versions look like: letters and digits, starting with a
// letter.
func isName(s string) bool {
	for i, r := range s {
		isLetter := (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z')
		if !isLetter && (i == 0 || r < '0' || r > '9') {
			return false
		}
	}
	return s != ""
}

// eventTypes is the set of event types the source emits.
func (c *Config) eventTypes() map[string]bool {
	names := c.EventTypes
	if c.Type != "" {
		names = []string{c.Type}
	}
	if len(names) == 0 {
		return map[string]bool{added: true, modified: true, deleted: true}
	}
	set := map[string]bool{}
	for _, n := range names {
		set[eventTypeNames[n]] = true
	}
	return set
}

// selector is the label selector the API server applies: filter.labels and
// filter.labelSelector together. Validate has checked both.
func (c *Config) selector() labels.Selector {
	if c.Filter == nil {
		return labels.Everything()
	}
	sel := labels.SelectorFromSet(c.Filter.Labels)
	if c.Filter.LabelSelector != "" {
		parsed, err := labels.Parse(c.Filter.LabelSelector)
		if err != nil {
			panic(fmt.Sprintf("labelSelector %q passed validation: %v", c.Filter.LabelSelector, err))
		}
		reqs, _ := parsed.Requirements()
		sel = sel.Add(reqs...)
	}
	return sel
}

// createdBy is filter.createdBy as a time; zero when unset.
func (f *Filter) createdBy() time.Time {
	if f == nil || f.CreatedBy == "" {
		return time.Time{}
	}
	t, _ := time.Parse(time.RFC3339, f.CreatedBy)
	return t
}
