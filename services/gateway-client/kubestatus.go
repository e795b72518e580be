package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"

	"github.com/eventgate/eventgate/pkg/apis/gateway/v1alpha1"
	"github.com/eventgate/eventgate/pkg/dispatch"
	"github.com/eventgate/eventgate/services/gateway-client/supervisor"
)

// nodeWriter keeps the Gateway's status.nodes equal to the sources' states: one node per
// event source. It writes JSON merge patches of status.nodes only, so that it never
// overwrites what the gateway-controller writes (spec, status.phase); the CRD has no status
// subresource (v0.10 clients write status with the object), so the patch goes to the object.
type nodeWriter struct {
	gateways dynamic.ResourceInterface
	gateway  string
	statuses func() []supervisor.Status
	log      *slog.Logger
	kick     chan struct{}
	// written is what the API server holds, by node ID: at first the nodes of an earlier
	// run, which the first write removes unless their source is still configured.
	written map[string]v1alpha1.NodeStatus
}

func newNodeWriter(gateways dynamic.ResourceInterface, gw *v1alpha1.Gateway, log *slog.Logger) *nodeWriter {
	written := map[string]v1alpha1.NodeStatus{}
	for id, n := range gw.Status.Nodes {
		written[id] = n
	}
	return &nodeWriter{gateways: gateways, gateway: gw.Name, log: log, kick: make(chan struct{}, 1), written: written}
}

// changed asks for a write; it never blocks, and many calls make one write.
func (w *nodeWriter) changed() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// settle lets a burst of changes (a thousand sources starting) become one patch.
const settle = 100 * time.Millisecond

// retryBackoff spaces the retries of a failed write.
var retryBackoff = dispatch.Backoff{Initial: 200 * time.Millisecond, Max: 30 * time.Second, Factor: 2, Jitter: 0.2}

// run writes the nodes after every change until ctx ends, retrying failed writes.
func (w *nodeWriter) run(ctx context.Context) {
	w.changed() // the first write: the ConfigMap as it is now, and an earlier run's leftovers
	var retry <-chan time.Time
	failures := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.kick:
		case <-retry:
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(settle):
		}
		select { // changes during the settle time are in this write
		case <-w.kick:
		default:
		}
		if err := w.write(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			wait := retryBackoff.Delay(failures)
			failures++
			w.log.Warn("Gateway status nodes not written: retrying", "error", err, "retryIn", wait, "attempt", failures)
			retry = time.After(wait)
			continue
		}
		failures, retry = 0, nil
	}
}

// write patches the nodes that differ from what the API server holds; a removed node is
// deleted by its key (null in a merge patch).
func (w *nodeWriter) write(ctx context.Context) error {
	want := map[string]v1alpha1.NodeStatus{}
	for _, st := range w.statuses() {
		n := nodeOf(w.gateway, st)
		want[n.ID] = n
	}
	patch := map[string]any{}
	for id, n := range want {
		if old, ok := w.written[id]; !ok || old != n {
			patch[id] = nodePatch(n)
		}
	}
	for id := range w.written {
		if _, ok := want[id]; !ok {
			patch[id] = nil
		}
	}
	if len(patch) == 0 {
		return nil
	}
	body, err := json.Marshal(map[string]any{"status": map[string]any{"nodes": patch}})
	if err != nil {
		return err
	}
	if _, err := w.gateways.Patch(ctx, w.gateway, types.MergePatchType, body, metav1.PatchOptions{}); err != nil {
		return err
	}
	w.written = want
	return nil
}

func nodeOf(gateway string, st supervisor.Status) v1alpha1.NodeStatus {
	n := v1alpha1.NodeStatus{
		ID:          v1alpha1.NodeID(gateway, st.Name),
		Name:        st.Name,
		DisplayName: st.Name,
		Phase:       v1alpha1.NodePhase(st.Phase),
		Message:     st.Message,
		UpdateTime:  metav1.NewMicroTime(st.ConfiguredAt.Truncate(time.Microsecond)),
	}
	if !st.StartedAt.IsZero() {
		n.StartedAt = metav1.NewMicroTime(st.StartedAt.Truncate(time.Microsecond))
	}
	return n
}

// nodePatch is a node as a merge patch: every field present, an empty one as null, so that
// the patch clears what an earlier state of the node left (a merge patch keeps every field
// it does not name).
func nodePatch(n v1alpha1.NodeStatus) map[string]any {
	m := map[string]any{"id": n.ID, "name": n.Name, "displayName": n.DisplayName, "phase": n.Phase,
		"message": nil, "startedAt": nil, "updateTime": nil}
	if n.Message != "" {
		m["message"] = n.Message
	}
	if !n.StartedAt.IsZero() {
		m["startedAt"] = n.StartedAt
	}
	if !n.UpdateTime.IsZero() {
		m["updateTime"] = n.UpdateTime
	}
	return m
}
