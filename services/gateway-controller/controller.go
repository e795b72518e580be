package main

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	appslisters "k8s.io/client-go/listers/apps/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"

	"github.com/eventgate/eventgate/pkg/apis/gateway/v1alpha1"
)

var gatewaysGVR = v1alpha1.SchemeGroupVersion.WithResource(v1alpha1.Plural)

// controller keeps the Deployment and Service of every Gateway of its instance equal to what
// the Gateway asks for. Gateways, Deployments and Services come from informers filtered by the
// instance-id label; each change queues the Gateway's key, and workers reconcile keys one at
// a time per key, retrying failures with per-key exponential backoff.
type controller struct {
	settings       settings
	controllerName string
	log            *slog.Logger
	metrics        *metrics

	kube     kubernetes.Interface
	gateways dynamic.NamespaceableResourceInterface
	recorder record.EventRecorder

	gatewayInformer cache.SharedIndexInformer
	deployments     appslisters.DeploymentLister
	services        corelisters.ServiceLister
	synced          []cache.InformerSynced
	startInformers  func(stop <-chan struct{})

	queue workqueue.TypedRateLimitingInterface[string]
}

func newController(kube kubernetes.Interface, dyn dynamic.Interface, s settings, controllerName string, m *metrics, log *slog.Logger) *controller {
	selector := labels.SelectorFromSet(labels.Set{
		labelInstanceID:              s.InstanceID,
		v1alpha1.LabelGatewayVersion: v1alpha1.GatewayVersion,
	}).String()
	childSelector := labels.SelectorFromSet(labels.Set{labelInstanceID: s.InstanceID}).String()

	// No periodic resync: every change of a Gateway or of a child is an event, and a
	// failed reconcile is retried by the queue.
	gwFactory := dynamicinformer.NewFilteredDynamicSharedInformerFactory(dyn, 0, s.Namespace, func(o *metav1.ListOptions) {
		o.LabelSelector = selector
	})
	kubeFactory := informers.NewSharedInformerFactoryWithOptions(kube, 0,
		informers.WithNamespace(s.Namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = childSelector }))

	c := &controller{
		settings:       s,
		controllerName: controllerName,
		log:            log,
		metrics:        m,
		kube:           kube,
		gateways:       dyn.Resource(gatewaysGVR),
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[string](500*time.Millisecond, 5*time.Minute),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "gateways"}),
	}
	c.gatewayInformer = gwFactory.ForResource(gatewaysGVR).Informer()
	deployInformer := kubeFactory.Apps().V1().Deployments()
	svcInformer := kubeFactory.Core().V1().Services()
	c.deployments = deployInformer.Lister()
	c.services = svcInformer.Lister()
	c.synced = []cache.InformerSynced{c.gatewayInformer.HasSynced, deployInformer.Informer().HasSynced, svcInformer.Informer().HasSynced}
	c.startInformers = func(stop <-chan struct{}) {
		gwFactory.Start(stop)
		kubeFactory.Start(stop)
	}

	c.gatewayInformer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.enqueue,
		UpdateFunc: func(_, obj any) { c.enqueue(obj) },
		DeleteFunc: c.enqueue,
	})
	children := cache.ResourceEventHandlerFuncs{
		AddFunc:    c.enqueueOwner,
		UpdateFunc: func(_, obj any) { c.enqueueOwner(obj) },
		DeleteFunc: c.enqueueOwner,
	}
	deployInformer.Informer().AddEventHandler(children)
	svcInformer.Informer().AddEventHandler(children)
	return c
}

// newRecorder sends Events about Gateways to the API server, as the controller's name.
func newRecorder(kube kubernetes.Interface, component string) (record.EventRecorder, func()) {
	sch := runtime.NewScheme()
	if err := scheme.AddToScheme(sch); err != nil {
		panic(err) // the built-in types always register
	}
	if err := v1alpha1.AddToScheme(sch); err != nil {
		panic(err)
	}
	b := record.NewBroadcaster()
	b.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: kube.CoreV1().Events("")})
	return b.NewRecorder(sch, corev1.EventSource{Component: component}), b.Shutdown
}

func (c *controller) enqueue(obj any) {
	key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj)
	if err != nil {
		c.log.Warn("cannot queue object", "error", err)
		return
	}
	c.queue.Add(key)
}

// enqueueOwner queues the Gateway that controls a Deployment or Service, so that a child
// deleted or edited by hand is put back.
func (c *controller) enqueueOwner(obj any) {
	if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tomb.Obj
	}
	m, err := meta.Accessor(obj)
	if err != nil {
		c.log.Warn("cannot read the owner of a child", "error", err)
		return
	}
	ref := metav1.GetControllerOf(m)
	if ref == nil || ref.Kind != v1alpha1.Kind || ref.APIVersion != v1alpha1.SchemeGroupVersion.String() {
		return
	}
	c.queue.Add(m.GetNamespace() + "/" + ref.Name)
}

// run reconciles until ctx ends, then waits for the workers.
func (c *controller) run(ctx context.Context, workers int) error {
	defer c.queue.ShutDown()
	c.startInformers(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), c.synced...) {
		return fmt.Errorf("informers did not sync: %w", ctx.Err())
	}
	c.log.Info("reconciling Gateways", "instanceID", c.settings.InstanceID, "namespace", namespaceOrAll(c.settings.Namespace), "workers", workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c.next(ctx) {
			}
		}()
	}
	<-ctx.Done()
	c.queue.ShutDown()
	wg.Wait()
	return nil
}

// staleRetry is how long a reconcile that met a newer Gateway than its cache's waits for
// the cache to catch up.
const staleRetry = 100 * time.Millisecond

// next reconciles one queued key; false once the queue is shut down.
func (c *controller) next(ctx context.Context) bool {
	key, quit := c.queue.Get()
	if quit {
		return false
	}
	defer c.queue.Done(key)
	start := time.Now()
	err := c.reconcile(ctx, key)
	if apierrors.IsConflict(err) {
		// Decided on a copy the cache had not yet updated: decide again on the new one,
		// soon, as no failure and without the failures' backoff.
		c.log.Debug("reconciled a stale copy: again", "gateway", key, "error", err)
		c.metrics.observe(nil, time.Since(start))
		c.queue.AddAfter(key, staleRetry)
		return true
	}
	c.metrics.observe(err, time.Since(start))
	if err != nil {
		c.log.Warn("reconcile failed, retrying with backoff", "gateway", key, "error", err, "retries", c.queue.NumRequeues(key))
		c.queue.AddRateLimited(key)
		return true
	}
	c.queue.Forget(key)
	return true
}

func namespaceOrAll(ns string) string {
	if ns == "" {
		return "(all)"
	}
	return ns
}
