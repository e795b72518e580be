package main

import (
	"context"
	"encoding/json"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"

	"github.com/eventgate/eventgate/pkg/apis/gateway/v1alpha1"
)

// setStatus writes the Gateway's phase and message when they changed, with a merge patch of
// those two fields only: the gateway-client writes status.nodes of the same object, and a
// full update would race it. A Conflict means u was stale (see next). An Error also becomes a Warning Event (with reason), once per
// change of message rather than once per reconcile.
func (c *controller) setStatus(ctx context.Context, u *unstructured.Unstructured, phase v1alpha1.NodePhase, message, reason string) error {
	oldPhase, _, _ := unstructured.NestedString(u.Object, "status", "phase")
	oldMessage, _, _ := unstructured.NestedString(u.Object, "status", "message")
	if oldPhase == string(phase) && oldMessage == message {
		return nil
	}
	if phase == v1alpha1.NodePhaseError {
		c.log.Error("Gateway cannot run", "gateway", keyOf(u), "reason", reason, "message", message)
		c.recorder.Event(u, corev1.EventTypeWarning, reason, message)
	} else {
		c.log.Info("Gateway phase", "gateway", keyOf(u), "phase", phase, "message", message)
	}
	// With the resourceVersion it was decided on, the patch applies only to the Gateway as
	// the controller saw it: decided on a stale copy, it would overwrite what was written
	// since, such as the gateway-client's Error (clientError), and is decided again.
	patch, err := json.Marshal(map[string]any{
		"metadata": map[string]any{"resourceVersion": u.GetResourceVersion()},
		"status":   map[string]any{"phase": phase, "message": message},
	})
	if err != nil {
		return err
	}
	_, err = c.gateways.Namespace(u.GetNamespace()).Patch(ctx, u.GetName(), types.MergePatchType, patch, metav1.PatchOptions{})
	if err != nil {
		return fmt.Errorf("write status of Gateway %s: %w", keyOf(u), err)
	}
	return nil
}

// event records a normal Event about a Gateway.
func (c *controller) event(gw *v1alpha1.Gateway, eventType, reason, message string) {
	c.recorder.Event(gw, eventType, reason, message)
}
