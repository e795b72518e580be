package kubeenv

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

// RestartAPIServer stops the kube-apiserver and starts it again, with the same flags, port
// and etcd, and returns once it is ready: every watch on it breaks, and clients reconnect
// to the same address. Tests that use it must not run in parallel with others of the
// package that use the server.
func (e *Env) RestartAPIServer(t testing.TB) {
	t.Helper()
	p := e.apiserver(t)
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		<-p.exited
	}
	if err := e.spawn(p.name, p.cmd.Path, p.cmd.Args[1:]...); err != nil {
		t.Fatal(err)
	}
	if err := e.waitReady(e.Admin.Host+"/readyz", e.Admin.BearerToken, p.name, 90*time.Second); err != nil {
		t.Fatal(err)
	}
}

// CompactEtcd compacts etcd's history up to its current revision, as the API server does
// every few minutes: a watch that resumes from an older resource version is told it is
// too old (410 Gone), and its informer lists again.
func (e *Env) CompactEtcd(t testing.TB) {
	t.Helper()
	url := e.etcdURL(t)
	var rng struct {
		Header struct {
			Revision string `json:"revision"`
		} `json:"header"`
	}
	// Any range request answers with the current revision ("Lw==" is the key "/").
	etcdPost(t, url+"/v3/kv/range", `{"key": "Lw=="}`, &rng)
	if rng.Header.Revision == "" {
		t.Fatal("etcd: no revision in the range answer")
	}
	etcdPost(t, url+"/v3/kv/compaction", fmt.Sprintf(`{"revision": %q, "physical": true}`, rng.Header.Revision), nil)
}

func (e *Env) apiserver(t testing.TB) *proc {
	t.Helper()
	for i := len(e.procs) - 1; i >= 0; i-- {
		if p := e.procs[i]; p.name == "kube-apiserver" {
			return p
		}
	}
	t.Fatal("kubeenv: no kube-apiserver process")
	return nil
}

// etcdURL is the etcd the API server was started with.
func (e *Env) etcdURL(t testing.TB) string {
	t.Helper()
	for _, arg := range e.apiserver(t).cmd.Args {
		if url, ok := strings.CutPrefix(arg, "--etcd-servers="); ok {
			return url
		}
	}
	t.Fatal("kubeenv: kube-apiserver has no --etcd-servers flag")
	return ""
}

func etcdPost(t testing.TB, url, body string, out any) {
	t.Helper()
	resp, err := http.Post(url, "application/json", bytes.NewBufferString(body))
	if err != nil {
		t.Fatalf("etcd: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("etcd: POST %s: %s", url, resp.Status)
	}
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatalf("etcd: POST %s: %v", url, err)
		}
	}
}
