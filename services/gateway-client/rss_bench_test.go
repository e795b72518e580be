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

	"github.com/eventgate/eventgate/pkg/sensorsink"
	"github.com/eventgate/eventgate/pkg/testenv"
	"github.com/eventgate/eventgate/services/gateway-client/supervisor"
)

// BenchmarkClientRSS runs the real gateway-client binary (go build, with the GOFLAGS of the
// run) against an in-process gateway server with 1 and with 1,000 idle event sources, and
// reports the process's resident memory once every source runs, beside the Go heap it
// reports itself: RSS - heap is the runtime, stacks and the binary's pages.
//
//	go test -run '^$' -bench ClientRSS -benchtime 1x ./services/gateway-client/
func BenchmarkClientRSS(b *testing.B) {
	bin := filepath.Join(b.TempDir(), "gateway-client")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	if st, err := os.Stat(bin); err == nil {
		b.Logf("binary: %.1f MiB", float64(st.Size())/(1<<20))
	}
	for _, n := range []int{1, 1000} {
		b.Run(fmt.Sprintf("sources=%d", n), func(b *testing.B) {
			for range b.N {
				m := clientMemory(b, bin, n)
				b.ReportMetric(float64(m.rss)/(1<<20), "rssMiB")
				b.ReportMetric(m.heapInuse/(1<<20), "heapInuseMiB")
				b.ReportMetric(m.goroutines, "goroutines")
			}
		})
	}
}

type memory struct {
	rss                   uint64
	heapInuse, goroutines float64
}

// clientMemory starts the client with n sources and measures it once all n run.
func clientMemory(b *testing.B, bin string, n int) memory {
	gw := testenv.StartGateway(b, everyGateway{})
	sensor := testenv.StartSensor(b, sensorsink.Endpoints{})
	dir := b.TempDir()
	gwFile, cmFile := filepath.Join(dir, "gateway.yaml"), filepath.Join(dir, "event-sources.yaml")
	if err := os.WriteFile(gwFile, []byte(gatewayManifest), 0o644); err != nil {
		b.Fatal(err)
	}
	var cm strings.Builder
	cm.WriteString("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: every-event-source\ndata:\n")
	for i := range n {
		fmt.Fprintf(&cm, "  s%04d: \"every: 1h\"\n", i)
	}
	if err := os.WriteFile(cmFile, []byte(cm.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	obs := freeLoopbackAddr(b)

	cmd := exec.Command(bin, "--gateway", gwFile, "--event-sources", cmFile, "--server", gw.Addr,
		"--sensor", "every-sensor="+sensor.URL, "--metrics-address", obs)
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
		return nil
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
