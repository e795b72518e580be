package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	goruntime "runtime"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/eventgate/eventgate/pkg/apis/gateway/v1alpha1"
)

var (
	gatewaysGVR   = v1alpha1.SchemeGroupVersion.WithResource(v1alpha1.Plural)
	configMapsGVR = schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}
)

// runKubernetes runs the client of a Gateway in the cluster: with --kubeconfig (or
// $KUBECONFIG) from outside, else with the pod's service account.
func runKubernetes(ctx context.Context, cfg clientConfig, log *slog.Logger) error {
	rc, err := clientcmd.BuildConfigFromFlags("", cfg.kubeconfig)
	if err != nil {
		return fmt.Errorf("Kubernetes client config: %w", err)
	}
	return runKube(ctx, cfg, rc, log)
}

// runKube reads the Gateway, follows its event-source ConfigMap, and keeps the Gateway's
// status nodes equal to its sources' states, until ctx ends. Only the dynamic client is
// used: the Gateway is converted into the API types, and the binary stays free of the
// generated clientsets.
func runKube(ctx context.Context, cfg clientConfig, rc *rest.Config, log *slog.Logger) error {
	dyn, err := dynamic.NewForConfig(rc)
	if err != nil {
		return fmt.Errorf("Kubernetes client: %w", err)
	}
	ref := cfg.namespace + "/" + cfg.gatewayName
	gateways := dyn.Resource(gatewaysGVR).Namespace(cfg.namespace)
	u, err := gateways.Get(ctx, cfg.gatewayName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("Gateway %s not found", ref)
	}
	if err != nil {
		return fmt.Errorf("read Gateway %s: %w", ref, err)
	}
	var gw v1alpha1.Gateway
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &gw); err != nil {
		return failGateway(ctx, gateways, cfg.gatewayName, ref, fmt.Errorf("Gateway %s does not decode: %w", ref, err), log)
	}
	gw.Default()
	if err := gw.Validate(); err != nil {
		return failGateway(ctx, gateways, cfg.gatewayName, ref, fmt.Errorf("Gateway %s cannot run: %w", ref, err), log)
	}
	cmNamespace, cmName, err := gw.Spec.EventSourceRef(gw.Namespace)
	if err != nil {
		return failGateway(ctx, gateways, cfg.gatewayName, ref, fmt.Errorf("Gateway %s cannot run: %w", ref, err), log)
	}
	log = log.With("gateway", ref)

	nodes := newNodeWriter(gateways, &gw, cfg.statusResync, log)
	// Sensors without a namespace are in the Gateway's.
	cfg.namespace = gw.Namespace
	c, err := startClient(ctx, cfg, &gw, log, nodes.changed)
	if err != nil {
		return failGateway(ctx, gateways, cfg.gatewayName, ref, fmt.Errorf("Gateway %s cannot run: %w", ref, err), log)
	}
	defer c.close()
	nodes.statuses = c.sup.Statuses

	source := cmNamespace + "/" + cmName
	access := newConfigMapAccess(gateways, cfg.gatewayName, ref, source, log)
	informer := configMapInformer(dyn.Resource(configMapsGVR).Namespace(cmNamespace), cmName, access.watching)
	// Before Run: a refused list or watch is otherwise retried forever with klog lines on
	// stderr only, and the client waits for the sync below without a word.
	if err := informer.SetWatchErrorHandlerWithContext(access.failed); err != nil {
		return err
	}
	apply := func(obj any) {
		u, ok := obj.(*unstructured.Unstructured)
		if !ok {
			return
		}
		data, _, err := unstructured.NestedStringMap(u.Object, "data")
		if err != nil {
			log.Error("ConfigMap data is not a map of strings: event sources left as they are", "configMap", source, "error", err)
			return
		}
		c.apply(data, log)
		nodes.changed()
	}
	_, err = informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    apply,
		UpdateFunc: func(_, obj any) { apply(obj) },
		DeleteFunc: func(any) {
			log.Warn("event-source ConfigMap deleted: stopping every source", "configMap", source)
			c.apply(nil, log)
			nodes.changed()
		},
	})
	if err != nil {
		return err
	}
	informerDone := make(chan struct{})
	go func() {
		defer close(informerDone)
		informer.RunWithContext(ctx)
	}()
	// The handlers are done before the client closes: none applies sources to a stopped
	// supervisor.
	defer func() { <-informerDone }()
	if !cache.WaitForCacheSync(ctx.Done(), informer.HasSynced) {
		return nil // ctx ended first
	}
	if len(informer.GetStore().ListKeys()) == 0 {
		log.Warn("event-source ConfigMap not found: no event sources until it is created", "configMap", source)
	}
	log.Info("gateway-client running", "servers", c.servers, "sensors", c.sensors, "configMap", source, "goMaxProcs", goruntime.GOMAXPROCS(0))
	// Nodes are written only once the ConfigMap is known: the first write then removes
	// exactly the nodes of sources that are gone since an earlier run.
	nodes.run(ctx)
	return nil
}

// configMapInformer follows the one ConfigMap: it lists and watches by name, and relists
// and rewatches by itself when the watch breaks. It is built on the dynamic client, not
// dynamicinformer, which would link every typed informer of client-go into the binary.
// watching hears of every watch the API server accepted: list and watch are allowed.
func configMapInformer(configMaps dynamic.ResourceInterface, name string, watching func(context.Context)) cache.SharedIndexInformer {
	byName := fields.OneTermEqualSelector("metadata.name", name).String()
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.FieldSelector = byName
			return configMaps.List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = byName
			w, err := configMaps.Watch(ctx, o)
			if err == nil {
				watching(ctx)
			}
			return w, err
		},
	}
	return cache.NewSharedIndexInformer(lw, &unstructured.Unstructured{}, 0, cache.Indexers{})
}

// clientMessagePrefix starts every status.message the client writes. The gateway-controller
// (services/gateway-controller/reconcile.go, clientError) keeps a phase Error with this prefix
// while the Gateway's Deployment is not available, instead of replacing it with Pending: a
// crash-looping pod never becomes available, and the client's reason is the one to read.
const clientMessagePrefix = "gateway-client: "

// failGateway marks the Gateway as failed, with the reason, and returns the reason: the
// user sees it in `kubectl get gateway` as well as in the client's log.
func failGateway(ctx context.Context, gateways dynamic.ResourceInterface, name, ref string, reason error, log *slog.Logger) error {
	if err := writeClientError(ctx, gateways, name, reason.Error()); err != nil {
		log.Error("could not write the Gateway's Error status", "gateway", ref, "error", err)
	}
	return reason
}

// writeClientError sets the Gateway's phase to Error with message (prefixed), with a merge
// patch of those two fields only.
func writeClientError(ctx context.Context, gateways dynamic.ResourceInterface, name, message string) error {
	patch, _ := json.Marshal(map[string]any{"status": map[string]any{
		"phase":   v1alpha1.NodePhaseError,
		"message": clientMessagePrefix + message,
	}})
	_, err := gateways.Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{})
	return err
}

// clearClientError removes the phase and message writeClientError wrote, unless someone
// (the gateway-controller) replaced the message since: a JSON patch whose test fails
// changes nothing. The controller, hearing of the change, writes the phase it sees.
func clearClientError(ctx context.Context, gateways dynamic.ResourceInterface, name, message string) error {
	patch, _ := json.Marshal([]map[string]any{
		{"op": "test", "path": "/status/message", "value": clientMessagePrefix + message},
		{"op": "remove", "path": "/status/phase"},
		{"op": "remove", "path": "/status/message"},
	})
	_, err := gateways.Patch(ctx, name, types.JSONPatchType, patch, metav1.PatchOptions{})
	return err
}
