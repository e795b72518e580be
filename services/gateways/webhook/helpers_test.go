package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/eventgate/eventgate/pkg/testenv"
)

// runAsGateway makes this test binary the webhook gateway process when a test re-executes
// it: main runs as it does in a pod, with the environment the test gives it.
const runAsGateway = "EVENTGATE_TEST_RUN_AS_WEBHOOK_GATEWAY"

func TestMain(m *testing.M) { os.Exit(testenv.MainOrTests(m, runAsGateway, main, nil)) }

// startProcess runs main in a process of its own with env added to the environment.
func startProcess(t *testing.T, env ...string) *testenv.Process {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return testenv.StartProcess(t, exe, nil, append([]string{runAsGateway + "=1"}, env...)...)
}

// testCert is a self-signed certificate for 127.0.0.1 (testenv.LoopbackCert), its key
// written to a file beside it as a user's mounted secret would be, and a client that trusts it.
type testCert struct {
	certPath, keyPath string
	client            *http.Client
}

func newTestCert(t *testing.T) testCert {
	t.Helper()
	cert, pemPath := testenv.LoopbackCert(t)
	keyDER, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	c := testCert{certPath: pemPath, keyPath: filepath.Join(t.TempDir(), "tls.key")}
	if err := os.WriteFile(c.keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	pool.AddCert(leaf)
	c.client = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	t.Cleanup(c.client.CloseIdleConnections)
	return c
}

// freePort is a loopback port nobody listens on right now. Tests need the port before the
// source starts, because it is part of the source's configuration.
func freePort(t testing.TB) string {
	t.Helper()
	_, port, err := net.SplitHostPort(testenv.FreePort(t))
	if err != nil {
		t.Fatal(err)
	}
	return port
}
