// Package kube gives eventgate's processes their Kubernetes client configuration (the file
// $KUBECONFIG names, else the pod's service account), and what they share in reading the
// API server's answers.
package kube

import (
	"fmt"
	"os"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// EnvKubeconfig names a kubeconfig file, for a process outside the cluster.
const EnvKubeconfig = "KUBECONFIG"

// Available tells whether a client configuration can be had: a kubeconfig is named, or the
// process runs in a pod (Kubernetes sets KUBERNETES_SERVICE_HOST in every container).
func Available(getenv func(string) string) bool {
	return getenv(EnvKubeconfig) != "" || getenv("KUBERNETES_SERVICE_HOST") != ""
}

// Config is the client configuration from kubeconfig, a file name ("" for the pod's service
// account).
func Config(kubeconfig string) (*rest.Config, error) {
	rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("Kubernetes client config: %w", err)
	}
	return rc, nil
}

// FromEnv is Config of $KUBECONFIG.
func FromEnv() (*rest.Config, error) { return Config(os.Getenv(EnvKubeconfig)) }

// IsDenied tells the errors of RBAC and authentication (Forbidden, Unauthorized), which no
// retry overcomes until someone changes the rules or the credentials.
func IsDenied(err error) bool {
	return apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err)
}
