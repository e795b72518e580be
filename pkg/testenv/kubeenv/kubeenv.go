// Package kubeenv runs a real kube-apiserver and etcd for tests, once per test process,
// on random loopback ports: Kubernetes-mode code is tested against the API server's real
// behaviour (watches, field selectors, merge patches, RBAC), not a fake clientset.
//
// The binaries come from tools/testservers/build.sh (EVENTGATE_KUBE_APISERVER and
// EVENTGATE_ETCD win over its cache folder). Without them a test skips with a loud message,
// and fails when EVENTGATE_REQUIRE_TEST_SERVERS=1, as the README's test command sets it.
package kubeenv

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/rest"

	"github.com/eventgate/eventgate/pkg/freeport"
)

// Env is a running API server.
type Env struct {
	// Admin is in group system:masters: it may do anything.
	Admin *rest.Config
	// AdminKubeconfig is a kubeconfig file for Admin, for processes under test.
	AdminKubeconfig string
	// User has no rights but those RBAC rules grant to the user named UserName.
	User     *rest.Config
	UserName string

	dir   string
	procs []*proc
}

type proc struct {
	name   string
	cmd    *exec.Cmd
	exited chan struct{}
}

var (
	once     sync.Once
	shared   *Env
	startErr error
	missing  string // why the servers cannot run here, when they cannot
)

// Shared starts the API server on first use and returns it; it runs until Stop (or the
// test process ends).
func Shared(t testing.TB) *Env {
	t.Helper()
	once.Do(func() {
		apiserver, etcd, why := binaries()
		if why != "" {
			missing = why
			return
		}
		shared, startErr = start(apiserver, etcd)
	})
	if missing != "" {
		Missing(t, "kube-apiserver/etcd for Kubernetes-mode tests", missing)
	}
	if startErr != nil {
		t.Fatalf("kube-apiserver: %v", startErr)
	}
	return shared
}

// Run runs the tests of a package and stops the servers after them:
//
//	func TestMain(m *testing.M) { os.Exit(kubeenv.Run(m)) }
func Run(m *testing.M) int {
	code := m.Run()
	Stop()
	return code
}

// Stop stops the servers, if a test started them, and removes their files: for a TestMain
// that runs the tests through another package's Run.
func Stop() {
	if shared != nil {
		shared.stop()
	}
}

// binaries finds kube-apiserver and etcd, or says why not.
func binaries() (apiserver, etcd, missing string) {
	apiserver = Find("EVENTGATE_KUBE_APISERVER", Executable, "kube-apiserver-v*/kube-apiserver")
	etcd = Find("EVENTGATE_ETCD", Executable, "/usr/bin/etcd", "etcd-v*/etcd")
	var why []string
	if apiserver == "" {
		why = append(why, "kube-apiserver not found (EVENTGATE_KUBE_APISERVER, "+CacheDir()+"/kube-apiserver-v*/)")
	}
	if etcd == "" {
		why = append(why, "etcd not found (EVENTGATE_ETCD, /usr/bin/etcd, "+CacheDir()+"/etcd-v*/)")
	}
	return apiserver, etcd, strings.Join(why, "; ")
}

func start(apiserverBin, etcdBin string) (_ *Env, err error) {
	dir, err := os.MkdirTemp("", "kubeenv-")
	if err != nil {
		return nil, err
	}
	e := &Env{dir: dir, UserName: "eventgate-test-user"}
	defer func() {
		if err != nil {
			e.stop()
		}
	}()

	etcdURL, err := e.startEtcd(etcdBin)
	if err != nil {
		return nil, err
	}
	adminToken, userToken := token(), token()
	tokens := fmt.Sprintf("%s,admin,admin-uid,\"system:masters\"\n%s,%s,user-uid\n", adminToken, userToken, e.UserName)
	if err := os.WriteFile(filepath.Join(dir, "tokens.csv"), []byte(tokens), 0o600); err != nil {
		return nil, err
	}
	saKey := filepath.Join(dir, "sa.key")
	if err := writeRSAKey(saKey); err != nil {
		return nil, err
	}
	port, err := freeport.Port()
	if err != nil {
		return nil, err
	}
	host := fmt.Sprintf("https://127.0.0.1:%d", port)
	err = e.spawn("kube-apiserver", apiserverBin,
		"--etcd-servers="+etcdURL,
		// etcd 3.4 lacks what the watch cache's consistent reads need from etcd.
		"--watch-cache=false",
		"--bind-address=127.0.0.1",
		fmt.Sprintf("--secure-port=%d", port),
		"--advertise-address=127.0.0.1",
		// No controller manager runs: nothing would keep the kubernetes Service's endpoints.
		"--endpoint-reconciler-type=none",
		"--service-cluster-ip-range=10.0.0.0/24",
		"--cert-dir="+filepath.Join(dir, "certs"),
		"--token-auth-file="+filepath.Join(dir, "tokens.csv"),
		"--authorization-mode=RBAC",
		"--service-account-issuer=https://kubeenv.local",
		"--service-account-key-file="+saKey,
		"--service-account-signing-key-file="+saKey,
		// Pods are never created here; the admission plugin would want a token controller.
		"--disable-admission-plugins=ServiceAccount",
		// OpenShift's default: setting an ownerReference with blockOwnerDeletion needs
		// update on the owner's finalizers subresource. On here, so that tests running a
		// process with a chart's rights see what such clusters refuse.
		"--enable-admission-plugins=OwnerReferencesPermissionEnforcement",
	)
	if err != nil {
		return nil, err
	}
	if err := e.waitReady(host+"/readyz", adminToken, "kube-apiserver", 90*time.Second); err != nil {
		return nil, err
	}
	cfg := func(tok string) *rest.Config {
		return &rest.Config{Host: host, BearerToken: tok, TLSClientConfig: rest.TLSClientConfig{Insecure: true}, QPS: 100, Burst: 200}
	}
	e.Admin, e.User = cfg(adminToken), cfg(userToken)
	e.AdminKubeconfig = filepath.Join(dir, "admin.kubeconfig")
	kubeconfig := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: kubeenv
  cluster: {server: %q, insecure-skip-tls-verify: true}
users:
- name: admin
  user: {token: %q}
contexts:
- name: kubeenv
  context: {cluster: kubeenv, user: admin}
current-context: kubeenv
`, host, adminToken)
	if err := os.WriteFile(e.AdminKubeconfig, []byte(kubeconfig), 0o600); err != nil {
		return nil, err
	}
	return e, nil
}

func (e *Env) startEtcd(bin string) (string, error) {
	client, err := freeport.Port()
	if err != nil {
		return "", err
	}
	peer, err := freeport.Port()
	if err != nil {
		return "", err
	}
	clientURL := fmt.Sprintf("http://127.0.0.1:%d", client)
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", peer)
	err = e.spawn("etcd", bin,
		"--name=kubeenv",
		"--data-dir="+filepath.Join(e.dir, "etcd"),
		"--listen-client-urls="+clientURL,
		"--advertise-client-urls="+clientURL,
		"--listen-peer-urls="+peerURL,
		"--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=kubeenv="+peerURL,
		"--log-level=warn",
	)
	if err != nil {
		return "", err
	}
	return clientURL, e.waitReady(clientURL+"/health", "", "etcd", 30*time.Second)
}

// spawn starts a server whose output goes to a log file in the temp folder (shown when it
// fails to start). The server dies with the test process even if stop never runs.
func (e *Env) spawn(name, bin string, args ...string) error {
	logFile, err := os.Create(filepath.Join(e.dir, name+".log"))
	if err != nil {
		return err
	}
	defer logFile.Close()
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Debian's etcd 3.4 refuses architectures other than amd64 and ppc64le unless told.
	cmd.Env = append(os.Environ(), "ETCD_UNSUPPORTED_ARCH="+runtime.GOARCH)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, exited: make(chan struct{})}
	go func() {
		cmd.Wait()
		close(p.exited)
	}()
	e.procs = append(e.procs, p)
	return nil
}

// waitReady polls url until it answers 200, or the last started server exits, or the time
// is up.
func (e *Env) waitReady(url, bearer, name string, limit time.Duration) error {
	cl := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	defer cl.CloseIdleConnections()
	exited := e.procs[len(e.procs)-1].exited
	deadline := time.Now().Add(limit)
	var last string
	for time.Now().Before(deadline) {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		resp, err := cl.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		select {
		case <-exited:
			return fmt.Errorf("%s exited while starting:\n%s", name, e.logTail(name))
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s not ready after %s (%s):\n%s", name, limit, last, e.logTail(name))
}

func (e *Env) logTail(name string) string {
	b, _ := os.ReadFile(filepath.Join(e.dir, name+".log"))
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// stop ends the servers, the API server first, and removes their files.
func (e *Env) stop() {
	for i := len(e.procs) - 1; i >= 0; i-- {
		p := e.procs[i]
		p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(10 * time.Second):
			p.cmd.Process.Kill()
			<-p.exited
		}
	}
	os.RemoveAll(e.dir)
}

func token() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func writeRSAKey(path string) error {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
}
