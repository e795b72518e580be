package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	kwatch "k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/cache"

	"github.com/eventgate/eventgate/pkg/config"
	"github.com/eventgate/eventgate/pkg/kube"
	"github.com/eventgate/eventgate/pkg/server"
)

// gatewayType names this gateway in logs, errors and CloudEvents.
const gatewayType = "resource"

// syncPoll is how often a starting source checks whether its watch has listed or failed.
const syncPoll = 20 * time.Millisecond

// gateway watches Kubernetes objects for its sources. Its Kubernetes clients are made at the
// first start, not before: the server starts and validates with no API server at all.
type gateway struct {
	// restConfig gives the client configuration ($KUBECONFIG, else in-cluster).
	restConfig func() (*rest.Config, error)

	mu      sync.Mutex
	clients *clients
	watches map[watchKey]*watch
	// failures paces the restarts of sources that could not start, by their own backoff:
	// the client restarts a failed source at its own pace, which may be quicker. An entry
	// lives from a failed start to the next successful one, and at most maxFailureAge.
	failures map[string]failure
	// watching, when set, is told the name of each source that has listed and watches:
	// tests wait on it instead of probing.
	watching func(source string)
}

type failure struct {
	count int
	at    time.Time
}

// maxFailureAge forgets the failure of a source that was not restarted (removed from the
// ConfigMap while failing), so the map stays bounded by the sources failing lately.
const maxFailureAge = 2 * config.MaxBackoffDelay

func newGateway() *gateway {
	return &gateway{restConfig: kube.FromEnv, watches: map[watchKey]*watch{}, failures: map[string]failure{}}
}

func (g *gateway) Type() string { return gatewayType }

func (g *gateway) Parse(name, data string) (server.Source, error) {
	cfg, err := config.Parse[Config](gatewayType, data)
	if err != nil {
		return nil, err
	}
	return &source{name: name, key: name + "\x00" + data, cfg: *cfg, gw: g, types: cfg.eventTypes(), selector: cfg.selector()}, nil
}

// clients are the gateway's Kubernetes clients, shared by every source.
type clients struct {
	dynamic dynamic.Interface
	// mapper resolves kinds to resources through discovery, cached in memory and reset
	// when a kind is not found (a CRD installed since).
	mapper *restmapper.DeferredDiscoveryRESTMapper
}

func (g *gateway) kubeClients() (*clients, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.clients != nil {
		return g.clients, nil
	}
	rc, err := g.restConfig()
	if err != nil {
		return nil, err
	}
	rc = rest.CopyConfig(rc)
	// Informers list once and then watch: the default 5 QPS only slows the starts.
	rc.QPS, rc.Burst = 50, 100
	dyn, err := dynamic.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("Kubernetes client: %w", err)
	}
	disc, err := discovery.NewDiscoveryClientForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("Kubernetes discovery client: %w", err)
	}
	g.clients = &clients{dynamic: dyn, mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(disc))}
	return g.clients, nil
}

// target is what a source watches, resolved through discovery.
type target struct {
	gvr        schema.GroupVersionResource
	kind       string
	namespaced bool
}

// resolve finds the resource of the source's kind (or the kind of its resource). A kind
// the cached discovery does not know is looked up again once, fresh.
func (c *clients) resolve(cfg *Config) (target, error) {
	gv := schema.GroupVersion{Group: cfg.Group, Version: cfg.Version}
	var m *meta.RESTMapping
	var err error
	for attempt := 0; attempt < 2; attempt++ {
		if attempt > 0 {
			c.mapper.Reset()
		}
		kind := cfg.Kind
		if kind == "" {
			var gvk schema.GroupVersionKind
			if gvk, err = c.mapper.KindFor(gv.WithResource(cfg.Resource)); err != nil {
				continue
			}
			kind = gvk.Kind
		}
		if m, err = c.mapper.RESTMapping(schema.GroupKind{Group: cfg.Group, Kind: kind}, cfg.Version); err == nil {
			break
		}
	}
	what := "kind " + cfg.Kind
	if cfg.Kind == "" {
		what = "resource " + cfg.Resource
	}
	switch {
	case meta.IsNoMatchError(err):
		return target{}, fmt.Errorf("unknown %s in %s: the API server does not serve it", what, gvString(gv))
	case err != nil:
		return target{}, fmt.Errorf("look up %s in %s: %w", what, gvString(gv), err)
	}
	return target{gvr: m.Resource, kind: m.GroupVersionKind.Kind, namespaced: m.Scope.Name() == meta.RESTScopeNameNamespace}, nil
}

func gvString(gv schema.GroupVersion) string {
	if gv.Group == "" {
		return "core/" + gv.Version
	}
	return gv.String()
}

// watchKey identifies one informer: sources that watch the same resource in the same
// namespace with the same server-side label selector share it.
type watchKey struct {
	gvr       schema.GroupVersionResource
	namespace string
	selector  string
}

// watch is one shared informer, running while a source uses it.
type watch struct {
	key      watchKey
	informer cache.SharedIndexInformer
	stop     context.CancelFunc
	refs     int // under gateway.mu
	// denied is closed when RBAC refuses the informer's list or watch: its sources end
	// with deniedErr. The informer itself would only list again and again, on backoff:
	// with list allowed and watch forbidden, a slow poller that loses short-lived changes.
	denied chan struct{}

	mu        sync.Mutex
	lastErr   error // the last list or watch failure
	deniedErr error
	// answered is set once a watch request was answered other than by a refusal: the
	// informer watches, or retries for a reason RBAC has no part in.
	answered bool
}

// startErr is why a source cannot start on w: RBAC refuses the list or watch (the
// informer would only list again, on backoff), or the informer failed before it could
// list. Any other failure once listed is the informer's to retry (it relists, and the
// handlers see only what changed).
func (w *watch) startErr() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.deniedErr != nil {
		return w.deniedErr
	}
	if w.lastErr != nil && !w.informer.HasSynced() {
		return w.lastErr
	}
	return nil
}

func (w *watch) deniedBy() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.deniedErr
}

func (w *watch) hasAnswered() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.answered
}

// failed records a list or watch failure the informer reports; it tells whether the
// failure is the first denial.
func (w *watch) failed(err error) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.lastErr = err
	if !kube.IsDenied(err) {
		w.answered = true // the informer lists and watches again: nothing for RBAC to say
		return false
	}
	if w.deniedErr != nil {
		return false
	}
	w.deniedErr = err
	close(w.denied)
	return true
}

// watchAnswered records the outcome of one watch request. A refusal is left to failed,
// which hears of it once the informer gives up that attempt; so is a failed streaming
// list (sendInitialEvents), which the informer follows with a plain list and watch.
func (w *watch) watchAnswered(opts metav1.ListOptions, err error) {
	streamingList := opts.SendInitialEvents != nil && *opts.SendInitialEvents
	if err != nil && (kube.IsDenied(err) || streamingList) {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.answered = true
}

// acquire returns the running informer for key, starting it for the first user.
func (g *gateway) acquire(c *clients, key watchKey) *watch {
	g.mu.Lock()
	defer g.mu.Unlock()
	if w := g.watches[key]; w != nil {
		w.refs++
		return w
	}
	w := &watch{key: key, refs: 1, denied: make(chan struct{})}
	w.informer = newInformer(c, w)
	_ = w.informer.SetWatchErrorHandlerWithContext(func(ctx context.Context, r *cache.Reflector, err error) {
		if w.failed(err) {
			g.forget(w)
		}
		cache.DefaultWatchErrorHandler(ctx, r, err)
	})
	ctx, cancel := context.WithCancel(context.Background())
	w.stop = cancel
	go w.informer.RunWithContext(ctx)
	g.watches[key] = w
	return w
}

// newInformer is dynamicinformer's informer of w's resource, whose watch requests w hears
// of: a start waits until the first is answered.
func newInformer(c *clients, w *watch) cache.SharedIndexInformer {
	objects := c.dynamic.Resource(w.key.gvr).Namespace(w.key.namespace)
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
			opts.LabelSelector = w.key.selector
			return objects.List(ctx, opts)
		},
		WatchFuncWithContext: func(ctx context.Context, opts metav1.ListOptions) (kwatch.Interface, error) {
			opts.LabelSelector = w.key.selector
			wi, err := objects.Watch(ctx, opts)
			w.watchAnswered(opts, err)
			return wi, err
		},
	}
	// No resync: nothing is re-emitted that did not change.
	return cache.NewSharedIndexInformerWithOptions(cache.ToListWatcherWithWatchListSemantics(lw, c.dynamic),
		&unstructured.Unstructured{}, cache.SharedIndexInformerOptions{ObjectDescription: w.key.gvr.String()})
}

// release drops one user of w; the last one stops the informer.
func (g *gateway) release(w *watch) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if w.refs--; w.refs == 0 {
		if g.watches[w.key] == w {
			delete(g.watches, w.key)
		}
		w.stop()
	}
}

// forget leaves a denied informer to the sources that use it, which end: the next start
// makes a new one, which asks the API server again.
func (g *gateway) forget(w *watch) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.watches[w.key] == w {
		delete(g.watches, w.key)
	}
}

// pace waits, when the source's last start failed, until its backoff has passed since.
func (g *gateway) pace(ctx context.Context, key string, b config.Backoff) error {
	g.mu.Lock()
	f, ok := g.failures[key]
	g.mu.Unlock()
	if !ok {
		return nil
	}
	wait := b.Delay(f.count-1) - time.Since(f.at)
	if wait <= 0 {
		return nil
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (g *gateway) recordStart(key string, err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if err == nil {
		delete(g.failures, key)
		return
	}
	now := time.Now()
	for k, f := range g.failures {
		if now.Sub(f.at) > maxFailureAge {
			delete(g.failures, k)
		}
	}
	f := g.failures[key]
	g.failures[key] = failure{count: f.count + 1, at: now}
}

// payload is the event body, in JSON:
//
//	{"type": "MODIFIED", "object": {...}, "oldObject": {...}, "group": "", "version": "v1",
//	 "resource": "configmaps", "kind": "ConfigMap", "namespace": "default", "name": "app"}
//
// type is ADDED, MODIFIED or DELETED; object is the object as the API server returned it
// (after the change; on DELETED its last known state); oldObject, on MODIFIED only, is the
// object before the change. namespace is empty for cluster-scoped objects.
type payload struct {
	Type      string         `json:"type"`
	Object    map[string]any `json:"object"`
	OldObject map[string]any `json:"oldObject,omitempty"`
	Group     string         `json:"group"`
	Version   string         `json:"version"`
	Resource  string         `json:"resource"`
	Kind      string         `json:"kind"`
	Namespace string         `json:"namespace"`
	Name      string         `json:"name"`
}

// source is one watch of objects. Changes are events at most once: what changes while the
// gateway is down, or before the source started, is not reported (unless includeExisting,
// as an ADDED event of the object's state at the start).
type source struct {
	name     string
	key      string // name and data: the failures entry
	cfg      Config
	gw       *gateway
	types    map[string]bool
	selector labels.Selector
}

// Start resolves the kind, joins (or starts) the informer of its resource and namespace,
// waits until it has listed, and emits the changes until ctx ends or the stream is gone.
// A start that fails (forbidden, unknown kind, API server unreachable) ends the source
// with that error, which the client shows and retries; the next start waits out the
// source's backoff.
func (s *source) Start(ctx context.Context, emit server.Emit) error {
	log := server.LoggerFrom(ctx)
	if err := s.gw.pace(ctx, s.key, s.cfg.Backoff); err != nil {
		return nil
	}
	started := time.Now()
	w, reg, err := s.watch(ctx, log, started, emit)
	if ctx.Err() != nil {
		return nil
	}
	s.gw.recordStart(s.key, err)
	if err != nil {
		return err
	}
	defer s.gw.release(w)
	defer func() { _ = w.informer.RemoveEventHandler(reg) }()
	log.Info("watching", "resource", w.key.gvr.String(), "namespace", w.key.namespace, "labelSelector", w.key.selector)
	if s.gw.watching != nil {
		s.gw.watching(s.name)
	}
	// The stream's end ends ctx too: emits fail from then on, and nothing is left to do.
	select {
	case <-ctx.Done():
		return nil
	case <-w.denied:
		// Watch permission revoked (seen when the informer watches again): the client
		// shows the reason and starts the source again after its backoff.
		err := fmt.Errorf("watch %s: %w", describe(w.key.gvr, w.key.namespace), w.deniedBy())
		s.gw.recordStart(s.key, err)
		return err
	}
}

func (s *source) watch(ctx context.Context, log *slog.Logger, started time.Time, emit server.Emit) (*watch, cache.ResourceEventHandlerRegistration, error) {
	c, err := s.gw.kubeClients()
	if err != nil {
		return nil, nil, err
	}
	t, err := c.resolve(&s.cfg)
	if err != nil {
		return nil, nil, err
	}
	ns := s.cfg.Namespace
	if !t.namespaced && ns != "" {
		log.Warn("namespace ignored: the resource is cluster-scoped", "resource", t.gvr.String(), "namespace", ns)
		ns = ""
	}
	w := s.gw.acquire(c, watchKey{gvr: t.gvr, namespace: ns, selector: s.selector.String()})
	h := &handler{src: s, target: t, started: started, ctx: ctx, emit: emit, log: log}
	reg, err := w.informer.AddEventHandler(cache.ResourceEventHandlerDetailedFuncs{
		AddFunc:    h.onAdd,
		UpdateFunc: h.onUpdate,
		DeleteFunc: h.onDelete,
	})
	if err != nil {
		s.gw.release(w)
		return nil, nil, fmt.Errorf("watch %s: %w", t.gvr, err)
	}
	// Listed and watching (the first watch request answered), or failed.
	for {
		err := w.startErr()
		if err == nil && reg.HasSynced() && w.hasAnswered() {
			return w, reg, nil
		}
		if err != nil {
			_ = w.informer.RemoveEventHandler(reg)
			s.gw.release(w)
			return nil, nil, fmt.Errorf("watch %s: %w", describe(t.gvr, ns), err)
		}
		select {
		case <-ctx.Done():
			_ = w.informer.RemoveEventHandler(reg)
			s.gw.release(w)
			return nil, nil, ctx.Err()
		case <-time.After(syncPoll):
		}
	}
}

func describe(gvr schema.GroupVersionResource, ns string) string {
	where := "in every namespace"
	if ns != "" {
		where = "in namespace " + ns
	}
	return gvr.Resource + "." + gvString(gvr.GroupVersion()) + " " + where
}

// handler turns one source's informer notifications into events. The informer calls it
// from one goroutine per handler, in order; emit blocks while the client does not read,
// and the informer queues the notifications meanwhile.
type handler struct {
	src     *source
	target  target
	started time.Time
	ctx     context.Context
	emit    server.Emit
	log     *slog.Logger
}

func (h *handler) onAdd(obj any, inInitialList bool) {
	if inInitialList && !h.src.cfg.IncludeExisting {
		return // existed before the source started
	}
	h.handle(added, obj, nil)
}

func (h *handler) onUpdate(oldObj, newObj any) {
	// Deleted and created again under the same name while the watch was broken: the relist
	// finds another object under the name. Two changes, each reported as itself.
	if old, ok := oldObj.(*unstructured.Unstructured); ok && old != nil {
		if u, ok := newObj.(*unstructured.Unstructured); ok && u != nil && old.GetUID() != u.GetUID() {
			h.handle(deleted, old, nil)
			h.handle(added, u, nil)
			return
		}
	}
	h.handle(modified, newObj, oldObj)
}

func (h *handler) onDelete(obj any) {
	// A delete the informer missed (during a watch break) comes as a tombstone holding
	// the last state it knew, or nothing at all.
	if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tomb.Obj
	}
	h.handle(deleted, obj, nil)
}

func (h *handler) handle(eventType string, obj, oldObj any) {
	if !h.src.types[eventType] {
		return
	}
	u, ok := obj.(*unstructured.Unstructured)
	if !ok || u == nil || u.Object == nil {
		h.log.Warn("watch notification without an object: skipped", "type", eventType, "object", fmt.Sprintf("%T", obj))
		return
	}
	var old *unstructured.Unstructured
	if eventType == modified {
		old, _ = oldObj.(*unstructured.Unstructured)
		if old != nil && old.GetResourceVersion() == u.GetResourceVersion() {
			return // unchanged, as a relist sees it
		}
	}
	if !h.passes(u) {
		return
	}
	p := payload{
		Type: eventType, Object: u.Object,
		Group: h.target.gvr.Group, Version: h.target.gvr.Version, Resource: h.target.gvr.Resource, Kind: h.target.kind,
		Namespace: u.GetNamespace(), Name: u.GetName(),
	}
	if old != nil && old.Object != nil {
		p.OldObject = old.Object
	}
	ev, err := server.JSONEvent(p)
	if err != nil {
		h.log.Error("event not encoded: skipped", "error", err, "name", u.GetName())
		return
	}
	// The same change reported twice carries the same ID, for sensors that de-duplicate.
	ev.ID = strings.Join([]string{string(u.GetUID()), u.GetResourceVersion(), eventType}, "/")
	// One object's changes are delivered in order; different objects' concurrently.
	ev.OrderingKey = u.GetNamespace() + "/" + u.GetName()
	if err := h.emit(h.ctx, ev); err != nil && h.ctx.Err() == nil {
		h.log.Warn("event not delivered: stream gone", "error", err, "type", eventType, "name", u.GetName())
	}
}

// passes applies the source's filter to the object.
func (h *handler) passes(u *unstructured.Unstructured) bool {
	if !h.src.selector.Empty() && !h.src.selector.Matches(labels.Set(u.GetLabels())) {
		return false
	}
	f := h.src.cfg.Filter
	if f == nil {
		return true
	}
	if !strings.HasPrefix(u.GetName(), f.Prefix) {
		return false
	}
	annotations := u.GetAnnotations()
	for k, v := range f.Annotations {
		if got, ok := annotations[k]; !ok || got != v {
			return false
		}
	}
	created := u.GetCreationTimestamp().Time
	if by := f.createdBy(); !by.IsZero() && created.After(by) {
		return false
	}
	// Creation times have whole seconds: an object of the start's second counts as after.
	if f.AfterStart && created.Before(h.started.Truncate(time.Second)) {
		return false
	}
	return true
}
