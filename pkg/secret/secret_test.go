package secret

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"

	"github.com/eventgate/eventgate/pkg/config"
	"github.com/eventgate/eventgate/pkg/testenv/kubeenv"
)

func TestMain(m *testing.M) { os.Exit(kubeenv.Run(m)) }

const value = "s3cr3t-value-that-must-not-leak"

func TestDir(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "creds"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "creds", "password"), []byte(value+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	store, err := FromEnv(func(k string) string { return map[string]string{EnvDir: dir, "KUBERNETES_SERVICE_HOST": "10.0.0.1"}[k] }, "ns")
	if err != nil {
		t.Fatal(err)
	}
	got, err := store.Get(context.Background(), config.SecretRef{Name: "creds", Key: "password"})
	if err != nil || got != value+"\n" {
		t.Fatalf("Get = %q, %v; want the file's bytes (the folder wins over the API)", got, err)
	}
	_, err = store.Get(context.Background(), config.SecretRef{Name: "creds", Key: "user"})
	if err == nil || !strings.Contains(err.Error(), "secret creds/user: no file creds/user in "+dir) {
		t.Errorf("missing key: %v", err)
	}
}

func TestNoStore(t *testing.T) {
	store, err := FromEnv(func(string) string { return "" }, "ns")
	if err != nil {
		t.Fatal(err)
	}
	_, err = store.Get(context.Background(), config.SecretRef{Name: "a", Key: "b"})
	if err == nil || !strings.Contains(err.Error(), "no secret store: set GATEWAY_SECRETS_DIR") {
		t.Errorf("Get without a store: %v", err)
	}
}

// A real Secret on a real API server; errors say what is missing or forbidden, never the value.
func TestKubernetes(t *testing.T) {
	env := kubeenv.Shared(t)
	ns := env.Namespace(t)
	admin, err := corev1client.NewForConfig(env.Admin)
	if err != nil {
		t.Fatal(err)
	}
	_, err = admin.Secrets(ns).Create(context.Background(), &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "creds"},
		Data:       map[string][]byte{"password": []byte(value)},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	store := Kubernetes{Secrets: admin.Secrets(ns), Namespace: ns}
	if got, err := store.Get(context.Background(), config.SecretRef{Name: "creds", Key: "password"}); err != nil || got != value {
		t.Fatalf("Get = %q, %v", got, err)
	}
	user, err := corev1client.NewForConfig(env.User)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		store Store
		ref   config.SecretRef
		want  string
	}{
		{"no key", store, config.SecretRef{Name: "creds", Key: "user"}, `Secret ` + ns + `/creds has no key "user"`},
		{"no secret", store, config.SecretRef{Name: "nope", Key: "password"}, `no Secret "nope" in namespace ` + ns},
		{"forbidden", Kubernetes{Secrets: user.Secrets(ns), Namespace: ns}, config.SecretRef{Name: "creds", Key: "password"}, "forbidden: the gateway's service account needs get on secrets in namespace " + ns},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.store.Get(context.Background(), tc.ref)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			if strings.Contains(err.Error(), value) {
				t.Fatalf("the error shows the secret's value: %v", err)
			}
		})
	}
}
