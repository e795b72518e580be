package secret

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/eventgate/eventgate/pkg/config"
)

func TestValue(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "creds"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "creds", "password"), []byte(value), 0o600); err != nil {
		t.Fatal(err)
	}
	ref := &config.SecretRef{Name: "creds", Key: "password"}
	for _, tc := range []struct {
		name    string
		store   Store
		inline  string
		ref     *config.SecretRef
		want    string
		wantErr string
	}{
		{name: "inline", store: Dir(dir), inline: "inline-pw", want: "inline-pw"},
		{name: "inline without a store", inline: "inline-pw", want: "inline-pw"},
		{name: "from the secret", store: Dir(dir), ref: ref, want: value},
		{name: "missing key", store: Dir(dir), ref: &config.SecretRef{Name: "creds", Key: "token"}, wantErr: "x.passwordSecret: secret creds/token: no file creds/token in " + dir},
		{name: "no store", ref: ref, wantErr: "x.passwordSecret: secret creds/password: this gateway server has no secret store"},
		{name: "broken store", store: broken{os.ErrPermission}, ref: ref, wantErr: "x.passwordSecret: secret creds/password: no secret store: permission denied"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Value(context.Background(), tc.store, "x.passwordSecret", tc.inline, tc.ref)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("Value = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestForGateway(t *testing.T) {
	t.Setenv(EnvDir, t.TempDir())
	if _, ok := ForGateway("ns").(Dir); !ok {
		t.Errorf("with %s set, ForGateway is not the folder store", EnvDir)
	}
	t.Setenv(EnvDir, "")
	t.Setenv("KUBECONFIG", filepath.Join(t.TempDir(), "missing"))
	_, err := ForGateway("ns").Get(context.Background(), config.SecretRef{Name: "a", Key: "b"})
	if err == nil {
		t.Fatal("a missing kubeconfig gave a working store")
	}
	t.Logf("broken kubeconfig: %v", err)
}
