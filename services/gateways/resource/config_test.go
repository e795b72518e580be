package main

import (
	"testing"

	"github.com/eventgate/eventgate/pkg/testenv"
)

func TestConfigValidation(t *testing.T) {
	tests := []testenv.ParseCase{ // WantErr empty: valid
		{Name: "v0.10 as written", Data: `
namespace: argo-events
group: "argoproj.io"
version: "v1alpha1"
kind: "Workflow"
type: ADDED
filter:
  prefix: scripts-bash
  labels:
    workflows.argoproj.io/phase: Succeeded
  annotations:
    owner: team-a
  createdBy: "2019-01-01T00:00:00Z"`},
		{Name: "core group, every namespace, every type", Data: "version: v1\nkind: ConfigMap"},
		{Name: "createdBy unquoted", Data: "version: v1\nkind: Pod\nfilter: {createdBy: 2019-01-01T00:00:00Z}"},
		{Name: "resource instead of kind", Data: "group: apps\nversion: v1\nresource: deployments"},
		{Name: "eventTypes, v1 names", Data: "version: v1\nkind: ConfigMap\neventTypes: [ADD, UPDATE, DELETE]"},
		{Name: "eventTypes, v0.10 names", Data: "version: v1\nkind: ConfigMap\neventTypes: [ADDED, DELETED]"},
		{Name: "label selector expression", Data: "version: v1\nkind: ConfigMap\nfilter: {labelSelector: 'app in (a, b), !canary, tier=web'}"},
		{Name: "afterStart, includeExisting, backoff", Data: "version: v1\nkind: ConfigMap\nincludeExisting: true\nfilter: {afterStart: true}\nbackoff: {duration: 10000000000, factor: 2}"},

		{Name: "both kind and resource", Data: "version: v1\nkind: ConfigMap\nresource: configmaps", WantErr: "resource.kind: use either kind or resource, not both"},
		{Name: "neither kind nor resource", Data: "version: v1", WantErr: "resource.kind: is required (or resource)"},
		{Name: "missing version", Data: "kind: ConfigMap", WantErr: "resource.version: is required"},
		{Name: "version with a slash", Data: "version: apps/v1\nkind: Deployment", WantErr: `resource.version: "apps/v1" is not an API version such as v1`},
		{Name: "createdBy not RFC 3339", Data: "version: v1\nkind: Pod\nfilter: {createdBy: 'yesterday'}", WantErr: `resource.filter.createdBy: "yesterday" is not an RFC 3339 time`},
		{Name: "createdBy without zone", Data: "version: v1\nkind: Pod\nfilter: {createdBy: '2019-01-01 10:00'}", WantErr: `resource.filter.createdBy: "2019-01-01 10:00" is not an RFC 3339 time`},
		{Name: "unknown type", Data: "version: v1\nkind: Pod\ntype: CREATED", WantErr: `resource.type: unknown event type "CREATED", want ADDED, MODIFIED or DELETED`},
		{Name: "unknown event type in list", Data: "version: v1\nkind: Pod\neventTypes: [ADD, PATCH]", WantErr: `resource.eventTypes[1]: unknown event type "PATCH"`},
		{Name: "type and eventTypes", Data: "version: v1\nkind: Pod\ntype: ADDED\neventTypes: [ADD]", WantErr: "resource.eventTypes: use either type or eventTypes, not both"},
		{Name: "bad namespace", Data: "namespace: My_NS\nversion: v1\nkind: Pod", WantErr: `resource.namespace: "My_NS": a lowercase RFC 1123 label`},
		{Name: "bad label selector", Data: "version: v1\nkind: Pod\nfilter: {labelSelector: 'app in (a'}", WantErr: "resource.filter.labelSelector: "},
		{Name: "bad label value", Data: "version: v1\nkind: Pod\nfilter: {labels: {app: 'a b'}}", WantErr: `resource.filter.labels.app: "a b": a valid label must be`},
		{Name: "negative backoff", Data: "version: v1\nkind: Pod\nbackoff: {duration: -1s}", WantErr: "resource.backoff.duration: must not be negative, got -1s"},
		{Name: "unknown field", Data: "version: v1\nkind: Pod\nfilter: {sufix: x}", WantErr: `resource: invalid configuration: unknown field "sufix"`},
		{Name: "empty", Data: "", WantErr: "resource: configuration is empty"},
		{
			Name:    "every problem at once",
			Data:    "kind: ConfigMap\nresource: configmaps\ntype: NEW\nfilter: {createdBy: soon}",
			WantErr: `resource.version: is required; resource.kind: use either kind or resource, not both; resource.type: unknown event type "NEW", want ADDED, MODIFIED or DELETED; resource.filter.createdBy: "soon" is not an RFC 3339 time such as 2019-03-01T10:00:00Z`,
		},
	}
	testenv.ExpectParse(t, newGateway().Parse, tests)
}

// The shipped examples must stay valid: they are what users copy.
func TestExamplesAreValid(t *testing.T) {
	sources := testenv.Examples(t, "../../../deploy/examples/resource", gatewayType)
	if len(sources) < 4 {
		t.Fatalf("example has %d event sources, want at least 4", len(sources))
	}
	for name, data := range sources {
		if _, err := newGateway().Parse(name, data); err != nil {
			t.Errorf("example %q: %v", name, err)
		}
	}
}
