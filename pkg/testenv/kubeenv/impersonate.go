package kubeenv

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/client-go/rest"
)

// ServiceAccountUser is the user name a ServiceAccount authenticates as.
func ServiceAccountUser(namespace, name string) string {
	return "system:serviceaccount:" + namespace + ":" + name
}

// serviceAccountGroups are the groups the API server gives a ServiceAccount's token.
func serviceAccountGroups(namespace string) []string {
	return []string{"system:serviceaccounts", "system:serviceaccounts:" + namespace, "system:authenticated"}
}

// AsServiceAccount is cfg impersonating a ServiceAccount, as its pods' token would
// authenticate it (cfg's user must be allowed to impersonate: Admin is).
func AsServiceAccount(cfg *rest.Config, namespace, name string) *rest.Config {
	c := rest.CopyConfig(cfg)
	c.Impersonate = rest.ImpersonationConfig{UserName: ServiceAccountUser(namespace, name), Groups: serviceAccountGroups(namespace)}
	return c
}

// ServiceAccountKubeconfig is AsServiceAccount of Admin as a kubeconfig file, for a process
// under test that must have exactly the rights RBAC grants that account.
func (e *Env) ServiceAccountKubeconfig(t testing.TB, namespace, name string) string {
	t.Helper()
	raw, err := os.ReadFile(e.AdminKubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	groups := make([]string, 0, 3)
	for _, g := range serviceAccountGroups(namespace) {
		groups = append(groups, fmt.Sprintf("%q", g))
	}
	as := fmt.Sprintf("  user: {as: %q, as-groups: [%s], token: ", ServiceAccountUser(namespace, name), strings.Join(groups, ", "))
	kc := strings.Replace(string(raw), "  user: {token: ", as, 1)
	if kc == string(raw) {
		t.Fatalf("%s: no user token line to add the impersonation to", e.AdminKubeconfig)
	}
	path := filepath.Join(t.TempDir(), "sa.kubeconfig")
	if err := os.WriteFile(path, []byte(kc), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
