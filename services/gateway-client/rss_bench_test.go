package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/eventgate/eventgate/pkg/apis/gateway/v1alpha1"
	"github.com/eventgate/eventgate/pkg/sensorsink"
	"github.com/eventgate/eventgate/pkg/testenv"
	"github.com/eventgate/eventgate/services/gateway-client/supervisor"
)

// BenchmarkClientRSS runs the real gateway-client binary (go build with testenv.BuildTags
// and the GOFLAGS of the run) against an in-process gateway server with 1 and with 1,000
// idle event sources, and reports the process's resident memory once every source runs,
// beside the Go heap it reports itself: RSS - heap is the runtime, stacks and the binary's
// pages. In local mode the sources come from a file; in Kubernetes mode from a ConfigMap on
// a real API server, and the measure is taken once the Gateway's status has a Running node
// per source.
//
//	go test -run '^$' -bench ClientRSS -benchtime 1x ./services/gateway-client/
func BenchmarkClientRSS(b *testing.B) {
	bin := filepath.Join(b.TempDir(), "gateway-client")
	if out, err := exec.Command("go", "build", "-tags", testenv.BuildTags, "-o", bin, ".").CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	if st, err := os.Stat(bin); err == nil {
		b.Logf("binary: %.1f MiB", float64(st.Size())/(1<<20))
	}
	for _, mode := range []string{"local", "kubernetes"} {
		for _, n := range []int{1, 1000} {
			b.Run(fmt.Sprintf("mode=%s/sources=%d", mode, n), func(b *testing.B) {
				for range b.N {
					m := clientMemory(b, bin, mode, n)
					b.ReportMetric(float64(m.rss)/(1<<20), "rssMiB")
					b.ReportMetric(m.heapInuse/(1<<20), "heapInuseMiB")
					b.ReportMetric(m.goroutines, "goroutines")
				}
			})
		}
	}
}

type memory struct {
	rss                   uint64
	heapInuse, goroutines float64
}

// clientMemory starts the client with n sources and measures it once all n run.
func clientMemory(b *testing.B, bin, mode string, n int) memory {
	gw := testenv.StartGateway(b, everyGateway{})
	sensor := testenv.StartSensor(b, sensorsink.Endpoints{})
	sources := map[string]string{}
	for i := range n {
		sources[fmt.Sprintf("s%04d", i)] = "every: 1h"
	}
	obs := freeLoopbackAddr(b)
	args := []string{"--server", gw.Addr, "--sensor", "every-sensor=" + sensor.URL, "--metrics-address", obs}
	allNodesRunning := func() error { return nil }
	switch mode {
	case "local":
		dir := b.TempDir()
		gwFile, cmFile := filepath.Join(dir, "gateway.yaml"), filepath.Join(dir, "event-sources.yaml")
		if err := os.WriteFile(gwFile, []byte(gatewayManifest), 0o644); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(cmFile, []byte(eventSourcesManifest(sources)), 0o644); err != nil {
			b.Fatal(err)
		}
		args = append(args, "--gateway", gwFile, "--event-sources", cmFile)
	case "kubernetes":
		k := newKubeTest(b)
		k.create(b, gatewaysGVR, gatewayManifest)
		k.create(b, configMapsGVR, eventSourcesManifest(sources))
		args = append(args, "--kubeconfig", k.env.AdminKubeconfig, "--gateway-name", "every-gateway", "--namespace", k.ns)
		allNodesRunning = func() error {
			st, err := k.gatewayStatus("every-gateway")
			if err != nil {
				return err
			}
			running := 0
			for _, node := range st.Nodes {
				if node.Phase == v1alpha1.NodePhaseRunning {
					running++
				}
			}
			if running != n {
				return fmt.Errorf("%d of %d status nodes Running", running, n)
			}
			return nil
		}
	}

	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "LOG_LEVEL=error")
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
	}()
	testenv.Eventually(b, 2*time.Minute, 50*time.Millisecond, func() error {
		var sts []supervisor.Status
		if err := getJSON("http://"+obs+"/status", &sts); err != nil {
			return err
		}
		running := 0
		for _, st := range sts {
			if st.Phase == supervisor.PhaseRunning && st.Server != "" {
				running++
			}
		}
		if running != n {
			return fmt.Errorf("%d of %d sources running", running, n)
		}
		return allNodesRunning()
	})
	metrics := "http://" + obs + "/metrics"
	return memory{
		rss:        vmRSS(b, cmd.Process.Pid),
		heapInuse:  metric(b, metrics, "go_memstats_heap_inuse_bytes"),
		goroutines: metric(b, metrics, "go_goroutines"),
	}
}

func getJSON(url string, v any) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(v)
}

func vmRSS(b *testing.B, pid int) uint64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return kb << 10
		}
	}
	b.Fatal("no VmRSS in /proc/pid/status")
	return 0
}

func metric(b *testing.B, url, name string) float64 {
	resp, err := http.Get(url)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			v, err := strconv.ParseFloat(rest, 64)
			if err != nil {
				b.Fatal(err)
			}
			return v
		}
	}
	b.Fatalf("no %s in %s", name, url)
	return 0
}
