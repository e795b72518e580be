package main

import (
	"bytes"
	"encoding/pem"
	"fmt"

	"golang.org/x/crypto/x509roots/fallback/bundle"
)

// caCertsPath is where Go's crypto/x509 (and OpenSSL on Debian-like systems) look first for
// the system roots on Linux.
const caCertsPath = "etc/ssl/certs/ca-certificates.crt"

// caBundlePEM is the Mozilla (NSS) root store of golang.org/x/crypto/x509roots/fallback as PEM:
// gateways dial brokers and endpoints with public certificates, and the empty base has no
// roots of its own. It comes from a Go module pinned by go.sum, so the build stays offline
// and the image reproducible; a new version of that module is how the roots are updated.
//
// Roots that NSS trusts only with a constraint (certificates issued before a distrust date)
// are left out: a PEM file cannot carry the constraint, so including them would trust
// certificates the store no longer does.
func caBundlePEM() ([]byte, int) {
	var buf bytes.Buffer
	n := 0
	for root := range bundle.Roots() {
		if root.Constraint != nil {
			continue
		}
		// Writing to a bytes.Buffer cannot fail.
		_ = pem.Encode(&buf, &pem.Block{Type: "CERTIFICATE", Bytes: root.Certificate})
		n++
	}
	return buf.Bytes(), n
}

// minCACerts guards against a broken or emptied bundle: the NSS store has well over 100 roots.
const minCACerts = 50

func caBundle() ([]byte, error) {
	data, n := caBundlePEM()
	if n < minCACerts {
		return nil, fmt.Errorf("CA bundle: only %d roots in golang.org/x/crypto/x509roots/fallback, want at least %d", n, minCACerts)
	}
	return data, nil
}
