package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
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
//
// Anyone may change the nodes behind its back: a `kubectl replace` or `edit` of the Gateway
// is a full update, which without status takes every node away. The writer reads the
// Gateway again every resync and after a failed write, and writes what differs from what it
// read, so that the nodes converge on the sources' states even while the sources are steady.
type nodeWriter struct {
	gateways dynamic.ResourceInterface
	gateway  string
	statuses func() []supervisor.Status
	log      *slog.Logger
	kick     chan struct{}
	resync   time.Duration
	// written is what the API server holds, by node ID, as last read or written: at first
	// the nodes of an earlier run, which the first write removes unless their source is
	// still configured.
	written map[string]v1alpha1.NodeStatus
}

// defaultStatusResync is how often the writer reads the Gateway's nodes back.
const defaultStatusResync = time.Minute

// newNodeWriter writes the nodes of gw; resync is how often it reads them back (0: the
// default).
func newNodeWriter(gateways dynamic.ResourceInterface, gw *v1alpha1.Gateway, resync time.Duration, log *slog.Logger) *nodeWriter {
	if resync <= 0 {
		resync = defaultStatusResync
	}
	return &nodeWriter{gateways: gateways, gateway: gw.Name, log: log, kick: make(chan struct{}, 1), resync: resync,
		written: copyNodes(gw.Status.Nodes)}
}

func copyNodes(nodes map[string]v1alpha1.NodeStatus) map[string]v1alpha1.NodeStatus {
	written := make(map[string]v1alpha1.NodeStatus, len(nodes))
	for id, n := range nodes {
		written[id] = n
	}
	return written
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

// run writes the nodes after every change, and what someone else changed every resync,
// until ctx ends, retrying failed writes.
func (w *nodeWriter) run(ctx context.Context) {
	w.changed() // the first write: the ConfigMap as it is now, and an earlier run's leftovers
	resync := time.NewTicker(w.resync)
	defer resync.Stop()
	var retry <-chan time.Time
	failures := 0
	// The Gateway was read before the ConfigMap's first sync, which may have taken long
	// (RBAC): read it again before the first write.
	reread := true
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.kick:
		case <-retry:
		case <-resync.C:
			reread = true
		}
		if !w.settle(ctx) {
			return
		}
		if err := w.sync(ctx, reread); err != nil {
			if ctx.Err() != nil {
				return
			}
			wait := retryBackoff.Delay(failures)
			failures++
			w.log.Warn("Gateway status nodes not written: retrying", "error", err, "retryIn", wait, "attempt", failures)
			retry = time.After(wait)
			// A failed patch may have been applied all the same (an answer lost), or the
			// nodes changed meanwhile: the retry starts from what the server holds.
			reread = true
			continue
		}
		failures, retry, reread = 0, nil, false
	}
}

// settle lets a burst of changes become one write; false once ctx ended.
func (w *nodeWriter) settle(ctx context.Context) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(settle):
	}
	select { // changes during the settle time are in this write
	case <-w.kick:
	default:
	}
	return true
}

// sync writes the nodes, first reading back what the API server holds when reread.
func (w *nodeWriter) sync(ctx context.Context, reread bool) error {
	if reread {
		if err := w.read(ctx); err != nil {
			return err
		}
	}
	return w.write(ctx)
}

// read sets written to the nodes the API server holds. A node that does not decode counts
// as one that differs from every state: the next write replaces or removes it.
func (w *nodeWriter) read(ctx context.Context) error {
	u, err := w.gateways.Get(ctx, w.gateway, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("read the Gateway back: %w", err)
	}
	nodes, _, _ := unstructured.NestedMap(u.Object, "status", "nodes")
	written := make(map[string]v1alpha1.NodeStatus, len(nodes))
	for id, raw := range nodes {
		var n v1alpha1.NodeStatus
		if m, ok := raw.(map[string]any); ok {
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(m, &n); err != nil {
				n = v1alpha1.NodeStatus{}
			}
		}
		written[id] = n
	}
	w.written = written
	return nil
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
		if old, ok := w.written[id]; !ok || !sameNode(old, n) {
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

// sameNode compares the times as instants: read back, they come in another location.
func sameNode(a, b v1alpha1.NodeStatus) bool {
	return a.ID == b.ID && a.Name == b.Name && a.DisplayName == b.DisplayName && a.Phase == b.Phase &&
		a.Message == b.Message && a.StartedAt.Equal(&b.StartedAt) && a.UpdateTime.Equal(&b.UpdateTime)
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
