package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"

	"github.com/eventgate/eventgate/pkg/apis/gateway/v1alpha1"
)

// Reasons of the Events the controller records on a Gateway.
const (
	reasonInvalid      = "InvalidGateway"
	reasonChildFailed  = "ChildFailed"
	reasonChildCreated = "ChildCreated"
	reasonChildUpdated = "ChildUpdated"
)

// reconcile makes the Deployment and Service of the Gateway at key what the Gateway asks
// for, and writes the Gateway's phase. An error means "try again later"; a Gateway that
// cannot run as written is reported in its status and not retried until it changes.
func (c *controller) reconcile(ctx context.Context, key string) error {
	obj, exists, err := c.gatewayInformer.GetIndexer().GetByKey(key)
	if err != nil {
		return err
	}
	if !exists {
		// Its Deployment and Service go with it: they carry it as owner.
		c.log.Debug("Gateway gone", "gateway", key)
		return nil
	}
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return fmt.Errorf("unexpected %T in the Gateway informer", obj)
	}
	gw, err := decodeGateway(u.Object)
	if err != nil {
		// Not retried: only an edit can fix it, and an edit queues the Gateway again.
		return c.setStatus(ctx, u, v1alpha1.NodePhaseError, "Gateway does not decode: "+err.Error(), reasonInvalid)
	}
	gw.Default()
	if err := validate(gw); err != nil {
		return c.setStatus(ctx, u, v1alpha1.NodePhaseError, "invalid Gateway: "+err.Error(), reasonInvalid)
	}

	deploy, err := c.ensureDeployment(ctx, gw)
	if err != nil {
		return errors.Join(err, c.setStatus(ctx, u, v1alpha1.NodePhaseError, err.Error(), reasonChildFailed))
	}
	if err := c.ensureService(ctx, gw); err != nil {
		return errors.Join(err, c.setStatus(ctx, u, v1alpha1.NodePhaseError, err.Error(), reasonChildFailed))
	}
	if available(deploy) {
		return c.setStatus(ctx, u, v1alpha1.NodePhaseRunning, fmt.Sprintf("Deployment %s is available", deploy.Name), "")
	}
	if clientError(u) {
		// The pod's gateway-client said why it cannot run (and exited): its pod will not
		// become available, and Pending would hide the reason.
		return nil
	}
	return c.setStatus(ctx, u, v1alpha1.NodePhasePending, fmt.Sprintf("waiting for Deployment %s to become available", deploy.Name), "")
}

// clientMessagePrefix starts every status.message the gateway-client writes (its
// failGateway, services/gateway-client/kube.go); the controller's own messages never do.
const clientMessagePrefix = "gateway-client: "

// clientError tells a phase Error that the Gateway's gateway-client wrote. The controller
// keeps it while the Deployment is not available; once it is, Running replaces it.
func clientError(u *unstructured.Unstructured) bool {
	phase, _, _ := unstructured.NestedString(u.Object, "status", "phase")
	message, _, _ := unstructured.NestedString(u.Object, "status", "message")
	return phase == string(v1alpha1.NodePhaseError) && strings.HasPrefix(message, clientMessagePrefix)
}

// validate adds to the API's own checks what only a controller needs: a pod to run, and a
// name its children can carry.
func validate(gw *gateway) error {
	var problems []string
	if err := gw.Validate(); err != nil {
		problems = append(problems, err.Error())
	}
	// The name is the gateway-name label of the Deployment, its pods and the Service, and
	// names the Service unless spec.service names it. A name Kubernetes refuses there would
	// fail every apply of the child: the Gateway is refused as written instead, not
	// retried until it changes.
	if errs := validation.IsValidLabelValue(gw.Name); len(errs) > 0 {
		problems = append(problems, fmt.Sprintf("metadata.name: %q cannot be the %s label of the gateway's pods: %s", gw.Name, labelGatewayName, strings.Join(errs, "; ")))
	}
	if gw.service != nil && gw.service.Name == "" {
		name := serviceName(gw)
		if errs := validation.IsDNS1035Label(name); len(errs) > 0 {
			problems = append(problems, fmt.Sprintf("metadata.name: the Service would be named %q after it (spec.service.metadata.name is empty), which Kubernetes refuses: %s; name the Service or the Gateway otherwise",
				name, strings.Join(errs, "; ")))
		}
	}
	containers := gw.template.Spec.Containers
	if len(containers) == 0 {
		problems = append(problems, "spec.template.spec.containers: required: the gateway pod runs the gateway-client and a gateway server")
	}
	for i, ctr := range containers {
		if ctr.Image == "" {
			problems = append(problems, fmt.Sprintf("spec.template.spec.containers[%d].image: required", i))
		}
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

// available is the Deployment controller's verdict on the current spec.
func available(d *appsv1.Deployment) bool {
	if d.Status.ObservedGeneration < d.Generation {
		return false
	}
	for _, cond := range d.Status.Conditions {
		if cond.Type == appsv1.DeploymentAvailable {
			return cond.Status == corev1.ConditionTrue
		}
	}
	return false
}

func (c *controller) ensureDeployment(ctx context.Context, gw *gateway) (*appsv1.Deployment, error) {
	want := desiredDeployment(gw, c.settings.InstanceID, c.controllerName)
	want.TypeMeta = metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"}
	got, err := c.ensure(ctx, gw.Gateway, want, c.deploymentAPI(gw.Namespace))
	if err != nil {
		return nil, err
	}
	return got.(*appsv1.Deployment), nil
}

func (c *controller) ensureService(ctx context.Context, gw *gateway) error {
	want := desiredService(gw, c.settings.InstanceID)
	api := c.serviceAPI(gw.Namespace)
	if want == nil {
		return c.removeStale(ctx, gw.Gateway, "", api)
	}
	want.TypeMeta = metav1.TypeMeta{APIVersion: "v1", Kind: "Service"}
	_, err := c.ensure(ctx, gw.Gateway, want, api)
	return err
}

// childAPI is what ensure needs of a kind of child: the informer's view and the API calls.
type childAPI struct {
	kind   string
	cached func(name string) (metav1.Object, error)
	owned  func(gw *v1alpha1.Gateway) ([]metav1.Object, error)
	get    func(ctx context.Context, name string) (metav1.Object, error)
	apply  func(ctx context.Context, name string, data []byte) (metav1.Object, error)
	delete func(ctx context.Context, name string) error
}

// fieldManager owns, in the API server's field management, what the controller writes.
const fieldManager = "gateway-controller"

// ensure makes the child want exist as the Gateway asks, with server-side apply, forced: the
// API server changes nothing (and no watch event comes back) when the child already says what
// want says, takes back a field someone edited by hand, and removes a field the Gateway no
// longer sets. A child of the same name that is not this Gateway's is never taken over.
func (c *controller) ensure(ctx context.Context, gw *v1alpha1.Gateway, want metav1.Object, api childAPI) (metav1.Object, error) {
	if err := c.removeStale(ctx, gw, want.GetName(), api); err != nil {
		return nil, err
	}
	ref := fmt.Sprintf("%s %s/%s", api.kind, gw.Namespace, want.GetName())
	have, err := api.cached(want.GetName())
	if apierrors.IsNotFound(err) {
		// The informer sees only children with the instance label: ask the API server
		// whether someone else's object holds the name.
		have, err = api.get(ctx, want.GetName())
		if apierrors.IsNotFound(err) {
			have, err = nil, nil
		}
	}
	if err != nil {
		return nil, err
	}
	if have != nil && !metav1.IsControlledBy(have, gw) {
		return nil, fmt.Errorf("%s exists and is not this Gateway's: rename it in the Gateway or delete it", ref)
	}
	data, err := json.Marshal(want)
	if err != nil {
		return nil, err
	}
	got, err := api.apply(ctx, want.GetName(), data)
	if err != nil {
		verb := "update"
		if have == nil {
			verb = "create"
		}
		return nil, fmt.Errorf("%s %s: %w", verb, ref, err)
	}
	switch {
	case have == nil:
		c.log.Info("child created", "gateway", gw.Namespace+"/"+gw.Name, "kind", api.kind, "name", want.GetName())
		c.event(gw, corev1.EventTypeNormal, reasonChildCreated, "created "+ref)
	case got.GetResourceVersion() != have.GetResourceVersion():
		c.log.Info("child rewritten", "gateway", gw.Namespace+"/"+gw.Name, "kind", api.kind, "name", want.GetName())
		c.event(gw, corev1.EventTypeNormal, reasonChildUpdated, "updated "+ref)
	}
	return got, nil
}

// removeStale deletes the children of a kind that gw controls other than keep: what a
// renamed pod template or Service, or a dropped spec.service, left behind.
func (c *controller) removeStale(ctx context.Context, gw *v1alpha1.Gateway, keep string, api childAPI) error {
	children, err := api.owned(gw)
	if err != nil {
		return err
	}
	for _, ch := range children {
		if ch.GetName() == keep {
			continue
		}
		if err := api.delete(ctx, ch.GetName()); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete %s %s/%s, no longer in the Gateway: %w", api.kind, gw.Namespace, ch.GetName(), err)
		}
		c.log.Info("removed child no longer in the Gateway", "gateway", gw.Namespace+"/"+gw.Name, "kind", api.kind, "name", ch.GetName())
	}
	return nil
}

func applyOptions() metav1.PatchOptions {
	return metav1.PatchOptions{FieldManager: fieldManager, Force: ptr.To(true)}
}

func (c *controller) deploymentAPI(ns string) childAPI {
	return newChildAPI("Deployment", c.kube.AppsV1().Deployments(ns), c.deployments.Deployments(ns))
}

func (c *controller) serviceAPI(ns string) childAPI {
	return newChildAPI("Service", c.kube.CoreV1().Services(ns), c.services.Services(ns))
}

// typedClient is what childAPI uses of a typed client of one kind in one namespace
// (client-go's DeploymentInterface, ServiceInterface, ...).
type typedClient[T metav1.Object] interface {
	Get(ctx context.Context, name string, opts metav1.GetOptions) (T, error)
	Patch(ctx context.Context, name string, pt types.PatchType, data []byte, opts metav1.PatchOptions, subresources ...string) (T, error)
	Delete(ctx context.Context, name string, opts metav1.DeleteOptions) error
}

// namespaceLister is the informer's view of one kind in one namespace (client-go's
// DeploymentNamespaceLister, ServiceNamespaceLister, ...).
type namespaceLister[T metav1.Object] interface {
	Get(name string) (T, error)
	List(selector labels.Selector) ([]T, error)
}

func newChildAPI[T metav1.Object](kind string, api typedClient[T], cache namespaceLister[T]) childAPI {
	return childAPI{
		kind:   kind,
		cached: func(name string) (metav1.Object, error) { return cache.Get(name) },
		owned: func(gw *v1alpha1.Gateway) ([]metav1.Object, error) {
			list, err := cache.List(ownedBy(gw))
			return controlled(gw, list), err
		},
		get: func(ctx context.Context, name string) (metav1.Object, error) {
			return api.Get(ctx, name, metav1.GetOptions{})
		},
		apply: func(ctx context.Context, name string, data []byte) (metav1.Object, error) {
			return api.Patch(ctx, name, types.ApplyPatchType, data, applyOptions())
		},
		delete: func(ctx context.Context, name string) error { return api.Delete(ctx, name, metav1.DeleteOptions{}) },
	}
}

// ownedBy selects the children labelled with the Gateway's name; controlled keeps those it
// really controls (the label alone could be anyone's).
func ownedBy(gw *v1alpha1.Gateway) labels.Selector {
	return labels.SelectorFromSet(labels.Set{labelGatewayName: gw.Name})
}

func controlled[T metav1.Object](gw *v1alpha1.Gateway, list []T) []metav1.Object {
	var out []metav1.Object
	for _, o := range list {
		if metav1.IsControlledBy(o, gw) {
			out = append(out, o)
		}
	}
	return out
}

// keyOf is the queue key of a Gateway.
func keyOf(gw metav1.Object) string {
	key, _ := cache.MetaNamespaceKeyFunc(gw)
	return key
}
