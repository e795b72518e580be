package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// binaries are the real programs of the path, built from this checkout.
type binaries struct {
	webhook, client, sensor string
	benthos                 string // "": no Benthos baseline
}

// buildTags are the build tags of the shipped binaries (.bazelrc, testenv.BuildTags), so that
// the bench measures the memory of what is shipped.
const buildTags = "grpcnotrace"

// pprofFile is compiled into the gateway and the client when the bench profiles them (with
// go build -overlay, so the repository's sources stay as they are): a pprof server on
// $EVENTGATE_PPROF.
const pprofFile = `package main

import (
	"net/http"
	_ "net/http/pprof"
	"os"
)

func init() {
	if addr := os.Getenv("EVENTGATE_PPROF"); addr != "" {
		go http.ListenAndServe(addr, nil)
	}
}
`

// profiledPackages get pprofFile with -profile.
var profiledPackages = []string{"services/gateways/webhook", "services/gateway-client"}

// build compiles the webhook gateway, the gateway-client and the sensor into dir.
func build(root, dir string, profile bool) (binaries, error) {
	args := []string{"build", "-tags", buildTags, "-o", dir + string(filepath.Separator)}
	if profile {
		src := filepath.Join(dir, "zz_bench_pprof.go")
		if err := os.WriteFile(src, []byte(pprofFile), 0o644); err != nil {
			return binaries{}, err
		}
		replace := map[string]string{}
		for _, pkg := range profiledPackages {
			replace[filepath.Join(root, pkg, "zz_bench_pprof.go")] = src
		}
		overlay, _ := json.Marshal(map[string]any{"Replace": replace})
		path := filepath.Join(dir, "overlay.json")
		if err := os.WriteFile(path, overlay, 0o644); err != nil {
			return binaries{}, err
		}
		args = append(args, "-overlay", path)
	}
	args = append(args, "./services/gateways/webhook", "./services/gateway-client", "./services/sensor")
	cmd := exec.Command("go", args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return binaries{}, fmt.Errorf("go build: %w\n%s", err, out)
	}
	return binaries{
		webhook: filepath.Join(dir, "webhook"),
		client:  filepath.Join(dir, "gateway-client"),
		sensor:  filepath.Join(dir, "sensor"),
	}, nil
}

// moduleRoot is the folder of this checkout's go.mod.
func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("run the bench inside the eventgate module")
	}
	return filepath.Dir(gomod), nil
}

// proc is one program of the path, running for the bench.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// start runs bin; its stderr goes to logDir/<name>.log, its stdout to stdout (the log too
// when nil).
func start(name, bin string, args, env []string, logDir string, stdout io.Writer) (*proc, error) {
	log, err := os.Create(filepath.Join(logDir, name+".log"))
	if err != nil {
		return nil, err
	}
	p := &proc{name: name, cmd: exec.Command(bin, args...), done: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stderr = log
	p.cmd.Stdout = log
	if stdout != nil {
		p.cmd.Stdout = stdout
	}
	if err := p.cmd.Start(); err != nil {
		log.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		log.Close()
		close(p.done)
	}()
	return p, nil
}

// stop ends the program with SIGTERM, or SIGKILL after 5 s.
func (p *proc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

// usage is what the kernel accounts to a process.
type usage struct {
	rssKiB, peakKiB int64 // resident set now, and its high-water mark
	// fileKiB is the part of rssKiB that is pages of files (the binary's code and data,
	// shared with the page cache), the rest being the process's own (heap, stacks).
	fileKiB int64
	cpu     time.Duration // user + system time so far
	// rw counts the read and write system calls so far (/proc/<pid>/io syscr + syscw):
	// on loopback each is a wake-up of the other side, so per event it says how much
	// of a path's cost is hops between processes.
	rw int64
}

// clockTick is the unit of /proc/<pid>/stat times (USER_HZ, 100 on Linux).
const clockTick = 10 * time.Millisecond

func (p *proc) usage() (usage, error) {
	var u usage
	pid := strconv.Itoa(p.cmd.Process.Pid)
	err := eachField(pid, "status", func(key, value string) {
		kib, _ := strconv.ParseInt(strings.TrimSuffix(value, " kB"), 10, 64)
		switch key {
		case "VmRSS":
			u.rssKiB = kib
		case "VmHWM":
			u.peakKiB = kib
		case "RssFile":
			u.fileKiB = kib
		}
	})
	if err != nil {
		return u, err
	}
	stat, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return u, err
	}
	// The command name may hold spaces; the fields after it are fixed: utime and stime
	// are fields 14 and 15 of the line, the 12th and 13th after the name.
	_, rest, _ := strings.Cut(string(stat), ") ")
	fields := strings.Fields(rest)
	if len(fields) < 13 {
		return u, fmt.Errorf("/proc/%s/stat: unexpected format", pid)
	}
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	u.cpu = time.Duration(utime+stime) * clockTick
	err = eachField(pid, "io", func(key, value string) {
		if key == "syscr" || key == "syscw" {
			n, _ := strconv.ParseInt(value, 10, 64)
			u.rw += n
		}
	})
	return u, err
}

// eachField calls f with the key and the trimmed value of each "key: value" line of
// /proc/<pid>/<file>.
func eachField(pid, file string, f func(key, value string)) error {
	data, err := os.ReadFile("/proc/" + pid + "/" + file)
	if err != nil {
		return err
	}
	for _, line := range strings.Split(string(data), "\n") {
		key, value, _ := strings.Cut(line, ":")
		f(key, strings.TrimSpace(value))
	}
	return nil
}

// waitFor polls check until it returns nil, for at most total.
func waitFor(what string, total time.Duration, check func() error) error {
	deadline := time.Now().Add(total)
	for {
		err := check()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready within %s: %w", what, total, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// answers is a readiness check: a request to url answers want.
func answers(method, url string, want int) func() error {
	return func() error {
		req, err := http.NewRequest(method, url, nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			return fmt.Errorf("%s %s answered %d, want %d", method, url, resp.StatusCode, want)
		}
		return nil
	}
}
