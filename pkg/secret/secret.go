// Package secret resolves secret references ({name, key}) for gateway servers: from a Secret
// in the gateway's namespace, or, outside Kubernetes, from a folder laid out like a mounted
// secret volume ($GATEWAY_SECRETS_DIR/<name>/<key>). No value ever goes into an error.
package secret

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"

	"github.com/eventgate/eventgate/pkg/config"
	"github.com/eventgate/eventgate/pkg/kube"
)

// EnvDir names the folder of secrets, one sub-folder per Secret and one file per key, as a
// Secret mounted as a volume looks. It wins over the Kubernetes API.
const EnvDir = "GATEWAY_SECRETS_DIR"

// Store gives the value of a secret reference.
type Store interface {
	Get(ctx context.Context, ref config.SecretRef) (string, error)
}

// FromEnv is the store of a gateway server: the folder $GATEWAY_SECRETS_DIR when set, else the
// Secrets of namespace (the gateway's, GATEWAY_NAMESPACE) through the Kubernetes API, in a
// pod or with $KUBECONFIG; else a store that says how to provide secrets. It connects to
// nothing: a gateway starts and validates without a cluster.
func FromEnv(getenv func(string) string, namespace string) (Store, error) {
	if dir := getenv(EnvDir); dir != "" {
		return Dir(dir), nil
	}
	if !kube.Available(getenv) {
		return unavailable{}, nil
	}
	if namespace == "" {
		namespace = "default"
	}
	rc, err := kube.Config(getenv(kube.EnvKubeconfig))
	if err != nil {
		return nil, err
	}
	client, err := corev1client.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("Kubernetes client: %w", err)
	}
	return Kubernetes{Secrets: client.Secrets(namespace), Namespace: namespace}, nil
}

// Dir is a folder of secrets: <dir>/<name>/<key> holds the value, byte for byte.
type Dir string

func (d Dir) Get(_ context.Context, ref config.SecretRef) (string, error) {
	raw, err := os.ReadFile(filepath.Join(string(d), ref.Name, ref.Key))
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("%s: no file %s in %s", ref, filepath.Join(ref.Name, ref.Key), d)
	}
	if err != nil {
		// The error names the file, never its content.
		return "", fmt.Errorf("%s: %w", ref, err)
	}
	return string(raw), nil
}

// Kubernetes reads Secrets of one namespace (RBAC: get on secrets there).
type Kubernetes struct {
	Secrets   corev1client.SecretInterface
	Namespace string
}

func (k Kubernetes) Get(ctx context.Context, ref config.SecretRef) (string, error) {
	s, err := k.Secrets.Get(ctx, ref.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return "", fmt.Errorf("%s: no Secret %q in namespace %s", ref, ref.Name, k.Namespace)
	case apierrors.IsForbidden(err):
		return "", fmt.Errorf("%s: forbidden: the gateway's service account needs get on secrets in namespace %s", ref, k.Namespace)
	case err != nil:
		return "", fmt.Errorf("%s: %w", ref, err)
	}
	if v, ok := s.Data[ref.Key]; ok {
		return string(v), nil
	}
	if v, ok := s.StringData[ref.Key]; ok {
		return v, nil
	}
	return "", fmt.Errorf("%s: Secret %s/%s has no key %q", ref, k.Namespace, ref.Name, ref.Key)
}

type unavailable struct{}

func (unavailable) Get(_ context.Context, ref config.SecretRef) (string, error) {
	return "", fmt.Errorf("%s: no secret store: set %s to a folder of <name>/<key> files, or run in Kubernetes (or set %s)", ref, EnvDir, kube.EnvKubeconfig)
}
