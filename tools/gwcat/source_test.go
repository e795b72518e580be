package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/eventgate/eventgate/pkg/testenv"
)

const twoSources = `apiVersion: v1
kind: ConfigMap
metadata:
  name: probes
data:
  one: |-
    events: 1
    text: one
  two: |-
    events: 1
    text: two
`

const oneSource = `apiVersion: v1
kind: ConfigMap
metadata: {name: probes}
data:
  only: "events: 1\ntext: only"
`

func writeFile(t *testing.T, name, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestEventSourceFromFiles(t *testing.T) {
	gw := testenv.StartGateway(t, &probeGateway{})
	two := writeFile(t, "probes.yaml", twoSources)
	one := writeFile(t, "single.yaml", oneSource)
	plain := writeFile(t, "my-probe.yaml", "events: 1\ntext: plain\n")
	tests := []struct {
		name      string
		stdin     string
		args      []string
		wantName  string // the printed event's name (the source's name), when gwcat succeeds
		wantText  string // its payloadText: which source's data was sent
		wantError string // stderr, when gwcat fails with a usage error
	}{
		{name: "--key picks a source", args: []string{"--file", two, "--key", "two"}, wantName: "two", wantText: "two"},
		{name: "the only key needs no --key", args: []string{"--file", one}, wantName: "only", wantText: "only"},
		{name: "several keys need --key", args: []string{"--file", two},
			wantError: "gwcat start: --file " + two + ": the ConfigMap has 2 event sources, choose one with --key: one, two\n"},
		{name: "missing key", args: []string{"--file", two, "--key", "three"},
			wantError: `gwcat start: --key "three": the ConfigMap in --file ` + two + " has no such key; it has: one, two\n"},
		{name: "ConfigMap on stdin", stdin: twoSources, args: []string{"-", "--key", "one"}, wantName: "one", wantText: "one"},
		{name: "--file - is stdin", stdin: twoSources, args: []string{"--file", "-", "--key", "one"}, wantName: "one", wantText: "one"},
		{name: "plain YAML file is named after the file", args: []string{"--file", plain}, wantName: "my-probe", wantText: "plain"},
		{name: "plain YAML on stdin", stdin: "events: 1\ntext: piped", args: []string{"-"}, wantName: "gwcat", wantText: "piped"},
		{name: "--name wins over the key", args: []string{"--file", two, "--key", "two", "--name", "custom"}, wantName: "custom", wantText: "two"},
		{name: "--key needs a ConfigMap", args: []string{"--file", plain, "--key", "one"},
			wantError: `gwcat start: --key "one": --file ` + plain + " is not a ConfigMap manifest (apiVersion: v1, kind: ConfigMap)\n"},
		{name: "a source config with kind: ConfigMap is no manifest", args: []string{"--data", "events: 1\ntext: watch\nkind: ConfigMap"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"start", "--addr", gw.Addr, "--count", "1"}, tc.args...)
			got := gwcat(t, tc.stdin, args...)
			if tc.wantError != "" {
				if got.code != exitUsage || got.stdout != "" || !strings.HasPrefix(got.stderr, tc.wantError) {
					t.Fatalf("gwcat %s = %+v, want exit 2 and stderr %q", strings.Join(args, " "), got, tc.wantError)
				}
				return
			}
			if tc.wantName == "" { // the server is the judge of what is not a manifest
				if got.code != exitFailed || got.stderr != "invalid: probe: invalid configuration: unknown field \"kind\"\n" {
					t.Fatalf("gwcat %s = %+v, want the server's verdict on field kind", strings.Join(args, " "), got)
				}
				return
			}
			var ev struct{ Name, PayloadText string }
			if got.code != exitOK || json.Unmarshal([]byte(got.stdout), &ev) != nil || ev.Name != tc.wantName || ev.PayloadText != tc.wantText {
				t.Fatalf("gwcat %s = %+v, want an event named %q with payloadText %q", strings.Join(args, " "), got, tc.wantName, tc.wantText)
			}
		})
	}
}

func TestEventSourceDefaults(t *testing.T) {
	s := sourceFlags{data: "events: 1", version: "v0.10"}
	es, err := s.eventSource(strings.NewReader(""), false)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte("gwcat" + "events: 1"))
	if es.GetName() != "gwcat" || es.GetData() != "events: 1" || es.GetVersion() != "v0.10" || es.GetId() != hex.EncodeToString(sum[:]) {
		t.Errorf("event source = %v", es)
	}
	s = sourceFlags{data: "events: 1", name: "n", id: "given"}
	if es, err := s.eventSource(strings.NewReader(""), false); err != nil || es.GetName() != "n" || es.GetId() != "given" {
		t.Errorf("event source with --name and --id = %v, %v", es, err)
	}
}

func TestUsageErrors(t *testing.T) {
	const addr = "127.0.0.1:1" // never dialled: the command line is wrong before that
	tests := []struct {
		name   string
		args   []string
		stderr string // prefix of stderr
	}{
		{"no event source", []string{"validate", "--addr", addr},
			"gwcat validate: no event source: give --data YAML, --file PATH (one source's YAML or a ConfigMap manifest) or - to read stdin\n"},
		{"two event sources", []string{"start", "--addr", addr, "--data", "a: 1", "--file", "x.yaml"},
			"gwcat start: --data and --file are exclusive: give one event source\n"},
		{"stdin and --file", []string{"start", "--addr", addr, "-", "--file", "x.yaml"},
			"gwcat start: - (stdin) and --file are exclusive: give one event source\n"},
		{"missing file", []string{"validate", "--addr", addr, "--file", "/nonexistent/x.yaml"},
			"gwcat validate: --file: open /nonexistent/x.yaml: no such file or directory\n"},
		{"bad --addr", []string{"validate", "--addr", "nohost", "--data", "a: 1"},
			`gwcat validate: --addr "nohost": want host:port, e.g. 127.0.0.1:9330` + "\n"},
		{"negative --count", []string{"start", "--addr", addr, "--data", "a: 1", "--count", "-1"},
			"gwcat start: --count -1: must not be negative\n"},
		{"negative --dial-timeout", []string{"health", "--addr", addr, "--dial-timeout", "-1s"},
			"gwcat health: --dial-timeout -1s: must not be negative\n"},
		{"stray argument", []string{"start", "--addr", addr, "--data", "a: 1", "extra"},
			`gwcat start: unexpected argument "extra": everything else is a flag` + "\n"},
		{"no stdin for health", []string{"health", "-"},
			`gwcat health: unexpected argument "-": everything else is a flag` + "\n"},
		{"unknown flag", []string{"list", "--bogus"}, "flag provided but not defined: -bogus\nusage: gwcat list [flags]"},
		{"unknown command", []string{"frob"}, `gwcat: unknown command "frob"` + "\n\nusage: gwcat <command> [flags]"},
		{"no command", nil, "usage: gwcat <command> [flags]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := gwcat(t, "", tc.args...)
			if got.code != exitUsage || got.stdout != "" || !strings.HasPrefix(got.stderr, tc.stderr) {
				t.Errorf("gwcat %s = %+v, want exit 2 and stderr starting %q", strings.Join(tc.args, " "), got, tc.stderr)
			}
		})
	}
}

func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"help"}, {"start", "-h"}, {"validate", "--help"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			got := gwcat(t, "", args...)
			if got.code != exitOK || !strings.Contains(got.stdout+got.stderr, "usage: gwcat") {
				t.Errorf("gwcat %s = %+v, want exit 0 and usage", strings.Join(args, " "), got)
			}
		})
	}
}
