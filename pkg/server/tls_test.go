package server_test

import (
	"crypto/tls"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/eventgate/eventgate/pkg/server"
	"github.com/eventgate/eventgate/pkg/testenv"
)

func TestTLSConfig(t *testing.T) {
	ca := testenv.NewCA(t)
	srv := ca.ServerCert(t)
	notPEM := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(t.TempDir(), "missing")

	t.Run("plaintext", func(t *testing.T) {
		if cfg, err := (server.Env{}).TLSConfig(); cfg != nil || err != nil {
			t.Fatalf("TLSConfig = %v, %v; want nil, nil", cfg, err)
		}
	})
	t.Run("server certificate only", func(t *testing.T) {
		cfg, err := server.Env{TLSCertFile: srv.CertPath, TLSKeyFile: srv.KeyPath}.TLSConfig()
		if err != nil {
			t.Fatal(err)
		}
		if len(cfg.Certificates) != 1 || cfg.ClientAuth != tls.NoClientCert {
			t.Errorf("TLSConfig: %d certificates, client auth %v", len(cfg.Certificates), cfg.ClientAuth)
		}
	})
	t.Run("client certificates required", func(t *testing.T) {
		cfg, err := server.Env{TLSCertFile: srv.CertPath, TLSKeyFile: srv.KeyPath, TLSClientCAFile: ca.Path}.TLSConfig()
		if err != nil {
			t.Fatal(err)
		}
		if cfg.ClientAuth != tls.RequireAndVerifyClientCert || cfg.ClientCAs == nil {
			t.Errorf("TLSConfig: client auth %v, client CAs %v", cfg.ClientAuth, cfg.ClientCAs)
		}
	})
	for _, tc := range []struct {
		name    string
		env     server.Env
		wantErr string
	}{
		{"cert file missing", server.Env{TLSCertFile: missing, TLSKeyFile: srv.KeyPath}, server.EnvServerTLSCertFile + ", " + server.EnvServerTLSKeyFile + ": open " + missing},
		{"key does not match", server.Env{TLSCertFile: srv.CertPath, TLSKeyFile: ca.ClientCert(t, "other").KeyPath}, server.EnvServerTLSCertFile + ", " + server.EnvServerTLSKeyFile + ": tls: private key does not match public key"},
		{"client CA missing", server.Env{TLSCertFile: srv.CertPath, TLSKeyFile: srv.KeyPath, TLSClientCAFile: missing}, server.EnvServerTLSClientCAFile + ": open " + missing},
		{"client CA not PEM", server.Env{TLSCertFile: srv.CertPath, TLSKeyFile: srv.KeyPath, TLSClientCAFile: notPEM}, server.EnvServerTLSClientCAFile + ": no PEM certificate in " + notPEM},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := tc.env.TLSConfig()
			if err == nil || !strings.HasPrefix(err.Error(), tc.wantErr) {
				t.Fatalf("TLSConfig = %v, %v; want an error starting %q", cfg, err, tc.wantErr)
			}
		})
	}
}
