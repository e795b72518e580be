package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"

	"github.com/eventgate/eventgate/pkg/config"
)

// The environment the controller's pod sets, as v0.10's gateway-controller Deployment did.
const (
	// EnvNamespace is the controller's own namespace (downward API): its ConfigMap and
	// its leader-election Lease live there.
	EnvNamespace = "NAMESPACE"
	// EnvConfigMap names the controller's ConfigMap (v0.10: gateway-controller-configmap).
	EnvConfigMap = "CONTROLLER_CONFIG_MAP"
	// configKey is the ConfigMap key that holds the YAML settings, as in v0.10.
	configKey = "config"
)

// options is the command line, before the ConfigMap is read.
type options struct {
	kubeconfig     string
	namespace      string // the controller's own namespace
	configMap      string
	instanceID     string
	instanceIDSet  bool
	watchNamespace string
	watchSet       bool
	controllerName string
	leaderElect    bool
	leaseName      string
	leaseDuration  time.Duration
	metricsAddress string
	workers        int
}

// settings are what the controller runs with: the flags over the ConfigMap's values.
type settings struct {
	// InstanceID selects the Gateways whose instance-id label has this value.
	InstanceID string `json:"instanceID"`
	// Namespace restricts the controller to one namespace; empty watches all of them.
	Namespace string `json:"namespace,omitempty"`
}

func parseFlags(args []string, getenv func(string) string) (options, error) {
	fs := flag.NewFlagSet("gateway-controller", flag.ContinueOnError)
	o := options{}
	fs.StringVar(&o.kubeconfig, "kubeconfig", getenv("KUBECONFIG"), "kubeconfig file (default $KUBECONFIG, else the pod's service account)")
	fs.StringVar(&o.namespace, "namespace", getenv(EnvNamespace), "the controller's own namespace, for its ConfigMap and Lease (default $"+EnvNamespace+", else default)")
	fs.StringVar(&o.configMap, "config-map", getenv(EnvConfigMap), "ConfigMap in --namespace whose key \"config\" holds instanceID and namespace, as v0.10's gateway-controller-configmap (default $"+EnvConfigMap+"; none: flags only)")
	fs.StringVar(&o.instanceID, "instance-id", "", "handle Gateways labelled "+labelInstanceID+"=ID (overrides the ConfigMap)")
	fs.StringVar(&o.watchNamespace, "watch-namespace", "", "handle Gateways of this namespace only (overrides the ConfigMap; empty: all namespaces)")
	fs.StringVar(&o.controllerName, "controller-name", "gateway-controller", "the name gateway pods get in GATEWAY_CONTROLLER_NAME")
	fs.BoolVar(&o.leaderElect, "leader-elect", true, "take a Lease in --namespace before reconciling, so that several replicas are safe")
	fs.StringVar(&o.leaseName, "leader-election-id", "", "name of the Lease (default gateway-controller-<instance id>)")
	fs.DurationVar(&o.leaseDuration, "lease-duration", 15*time.Second, "how long a leader's Lease lasts unrenewed before another replica takes over")
	fs.StringVar(&o.metricsAddress, "metrics-address", ":8080", "serve /metrics, /healthz and /readyz here")
	fs.IntVar(&o.workers, "workers", 2, "Gateways reconciled at once")
	if err := fs.Parse(args); err != nil {
		return options{}, err
	}
	if fs.NArg() > 0 {
		return options{}, fmt.Errorf("unexpected arguments %q: everything is a flag", fs.Args())
	}
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "instance-id":
			o.instanceIDSet = true
		case "watch-namespace":
			o.watchSet = true
		}
	})
	if o.namespace == "" {
		o.namespace = "default"
	}
	var problems []string
	if o.workers < 1 {
		problems = append(problems, fmt.Sprintf("--workers: must be at least 1, got %d", o.workers))
	}
	// Every gateway pod gets it as GATEWAY_CONTROLLER_NAME, which a gateway server refuses
	// unless it is a DNS name: a pod that cannot start is found too late.
	if errs := validation.IsDNS1123Subdomain(o.controllerName); len(errs) > 0 {
		problems = append(problems, fmt.Sprintf("--controller-name: %q is not a DNS name: %s", o.controllerName, strings.Join(errs, ", ")))
	}
	if o.leaseDuration < 2*time.Second {
		problems = append(problems, fmt.Sprintf("--lease-duration: must be at least 2s, got %s", o.leaseDuration))
	}
	if len(problems) > 0 {
		return options{}, errors.New(strings.Join(problems, "; "))
	}
	return o, nil
}

// resolve reads the ConfigMap, if one is named, and lays the flags over it.
func (o options) resolve(ctx context.Context, kube kubernetes.Interface) (settings, error) {
	var s settings
	if o.configMap != "" {
		cm, err := kube.CoreV1().ConfigMaps(o.namespace).Get(ctx, o.configMap, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			return settings{}, fmt.Errorf("ConfigMap %s/%s (--config-map) not found", o.namespace, o.configMap)
		case err != nil:
			return settings{}, fmt.Errorf("read ConfigMap %s/%s: %w", o.namespace, o.configMap, err)
		}
		raw, ok := cm.Data[configKey]
		if !ok {
			return settings{}, fmt.Errorf("ConfigMap %s/%s: no key %q (want instanceID and, optionally, namespace)", o.namespace, o.configMap, configKey)
		}
		if err := config.Decode(configKey, raw, &s); err != nil {
			return settings{}, fmt.Errorf("ConfigMap %s/%s: %w", o.namespace, o.configMap, err)
		}
	}
	if o.instanceIDSet {
		s.InstanceID = o.instanceID
	}
	if o.watchSet {
		s.Namespace = o.watchNamespace
	}
	return s, s.validate()
}

func (s settings) validate() error {
	var problems []string
	if s.InstanceID == "" {
		problems = append(problems, "instanceID: required (the ConfigMap's config.instanceID or --instance-id), e.g. argo-events")
	} else if errs := validation.IsValidLabelValue(s.InstanceID); len(errs) > 0 {
		problems = append(problems, fmt.Sprintf("instanceID: %q is not a label value: %s", s.InstanceID, strings.Join(errs, ", ")))
	}
	if s.Namespace != "" {
		if errs := validation.IsDNS1123Label(s.Namespace); len(errs) > 0 {
			problems = append(problems, fmt.Sprintf("namespace: %q is not a namespace name: %s", s.Namespace, strings.Join(errs, ", ")))
		}
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

// leaseName is the Lease the replicas of one instance compete for.
func (o options) lease(s settings) string {
	if o.leaseName != "" {
		return o.leaseName
	}
	// An instance ID is a label value (A-Z, _ allowed); a Lease name is a DNS name.
	name := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-', r == '.':
			return r
		case r >= 'A' && r <= 'Z':
			return r + 'a' - 'A'
		}
		return '-'
	}, s.InstanceID)
	return strings.Trim("gateway-controller-"+name, "-.")
}

// identity names this replica in the Lease: the pod name where there is one.
func identity() string {
	host, _ := os.Hostname()
	if host == "" {
		host = "gateway-controller"
	}
	return fmt.Sprintf("%s_%d", host, os.Getpid())
}
