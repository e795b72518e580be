package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestBenthosVersionIsTheModulesRequirement(t *testing.T) {
	goMod := []byte("module x\n\ngo 1.26.0\n\nrequire github.com/redpanda-data/benthos/v4 v4.60.0\n\nrequire (\n\tcuelang.org/go v0.13.2 // indirect\n)\n")
	if v, err := benthosVersion(goMod); err != nil || v != "v4.60.0" {
		t.Errorf("version %q, error %v; want v4.60.0", v, err)
	}
	goMod = []byte("module x\n\nrequire example.com/other v1.0.0\n")
	if v, err := benthosVersion(goMod); err == nil {
		t.Errorf("a go.mod without Benthos gave version %q, want an error", v)
	}
}

func TestStartBenthosWritesItsPipeline(t *testing.T) {
	dir := t.TempDir()
	// /bin/true stands in for Benthos: only the config it is given is checked here.
	p, err := startBenthos(dir, "/bin/true", "127.0.0.1:1234", "http://127.0.0.1:5678/", 16)
	if err != nil {
		t.Fatal(err)
	}
	<-p.done
	if got := p.cmd.Args[1:]; !slices.Equal(got, []string{"run", filepath.Join(dir, "benthos.yaml")}) {
		t.Errorf("args %q, want run and the config", got)
	}
	config, err := os.ReadFile(filepath.Join(dir, "benthos.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"address: 127.0.0.1:1234", "url: http://127.0.0.1:5678/", "max_in_flight: 16", "Ce-Specversion: \"1.0\""} {
		if !strings.Contains(string(config), want) {
			t.Errorf("config lacks %q:\n%s", want, config)
		}
	}
}

func TestSplitEnv(t *testing.T) {
	for _, tc := range []struct {
		in        string
		env, args []string
	}{
		{"--ack-linger 0", nil, []string{"--ack-linger", "0"}},
		{"GOMAXPROCS=1 GOGC=50 --ack-linger 0", []string{"GOMAXPROCS=1", "GOGC=50"}, []string{"--ack-linger", "0"}},
		{"GOMAXPROCS=1", []string{"GOMAXPROCS=1"}, nil},
		// A flag's value that holds "=" stays a flag's.
		{"--sensor a=http://x/", nil, []string{"--sensor", "a=http://x/"}},
		{"--x=1 GOGC=50", nil, []string{"--x=1", "GOGC=50"}},
	} {
		env, args := splitEnv(strings.Fields(tc.in))
		if !slices.Equal(env, tc.env) || !slices.Equal(args, tc.args) {
			t.Errorf("%q: env %q, args %q; want %q, %q", tc.in, env, args, tc.env, tc.args)
		}
	}
}
