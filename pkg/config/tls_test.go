package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestTLSValidate(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "ca.txt")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		tls     *TLS
		wantErr string
	}{
		{name: "none", tls: nil},
		{name: "system CAs", tls: &TLS{}},
		{name: "missing CA file", tls: &TLS{CACertPath: filepath.Join(dir, "nope.pem")}, wantErr: "mqtt.tls: read CA certificate: open "},
		{name: "CA file without PEM", tls: &TLS{CACertPath: notPEM}, wantErr: "holds no PEM certificate"},
		{name: "cert without key", tls: &TLS{ClientCertPath: notPEM}, wantErr: "mqtt.tls: clientCertPath and clientKeyPath go together"},
		{name: "unreadable pair", tls: &TLS{ClientCertPath: notPEM, ClientKeyPath: notPEM}, wantErr: "mqtt.tls: load client certificate"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var errs Errors
			tc.tls.Validate(&errs, "mqtt.tls")
			err := errs.Err()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate = %v, want no error", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Validate = %v, want it to contain %q", err, tc.wantErr)
			}
		})
	}
}
