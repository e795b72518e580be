package server

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
)

// TLSConfig is the gRPC server's TLS configuration, nil when the environment asks for
// plaintext (the gateway-client in the same pod, on loopback). It reads the files once, at
// start; an error names the variable whose file is wrong.
func (e Env) TLSConfig() (*tls.Config, error) {
	if e.TLSCertFile == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(e.TLSCertFile, e.TLSKeyFile)
	if err != nil {
		return nil, fmt.Errorf("%s, %s: %w", EnvServerTLSCertFile, EnvServerTLSKeyFile, err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if e.TLSClientCAFile != "" {
		pem, err := os.ReadFile(e.TLSClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", EnvServerTLSClientCAFile, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s: no PEM certificate in %s", EnvServerTLSClientCAFile, e.TLSClientCAFile)
		}
		cfg.ClientCAs, cfg.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}
