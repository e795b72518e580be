package config

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
)

// TLS is how a stream gateway reaches its broker over TLS: files, since locally there are
// no Kubernetes secrets (in a pod, mount the secret and name the files).
type TLS struct {
	// CACertPath is a PEM bundle of the CAs that sign the broker's certificate (the
	// system's when empty).
	CACertPath string `json:"caCertPath,omitempty"`
	// ClientCertPath and ClientKeyPath are a client certificate, for brokers that ask.
	ClientCertPath string `json:"clientCertPath,omitempty"`
	ClientKeyPath  string `json:"clientKeyPath,omitempty"`
	// InsecureSkipVerify accepts any server certificate: for tests only.
	InsecureSkipVerify bool `json:"insecureSkipVerify,omitempty"`
}

// Validate records every problem of t with paths under path ("mqtt.tls"); a nil t is no TLS.
// Files must exist and parse now, so a typo is a validation error, not a reconnect loop.
func (t *TLS) Validate(errs *Errors, path string) {
	if t == nil {
		return
	}
	if (t.ClientCertPath == "") != (t.ClientKeyPath == "") {
		errs.Addf(path, "clientCertPath and clientKeyPath go together: set both or neither")
		return
	}
	if _, err := t.Config(); err != nil {
		errs.Addf(path, "%v", err)
	}
}

// Config builds the crypto/tls configuration; nil for a nil t.
func (t *TLS) Config() (*tls.Config, error) {
	if t == nil {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: t.InsecureSkipVerify}
	if t.CACertPath != "" {
		pem, err := os.ReadFile(t.CACertPath)
		if err != nil {
			return nil, fmt.Errorf("read CA certificate: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA certificate %s holds no PEM certificate", t.CACertPath)
		}
	}
	if t.ClientCertPath != "" {
		pair, err := tls.LoadX509KeyPair(t.ClientCertPath, t.ClientKeyPath)
		if err != nil {
			return nil, fmt.Errorf("load client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}
