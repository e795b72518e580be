package main

import (
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestErrors(t *testing.T) {
	bin := staticBinary(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "out.tar")
	notELF := filepath.Join(dir, "script")
	if err := os.WriteFile(notELF, []byte("#!/bin/sh\necho hi\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	// A registry that refuses every request, as one without our credentials would.
	denied := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "denied", http.StatusForbidden)
	}))
	t.Cleanup(denied.Close)
	deniedHost := strings.TrimPrefix(denied.URL, "http://")

	tests := []struct {
		name string
		args []string
		want string // a part of the error message
	}{
		{"no binary flag", []string{"--tarball", out}, "--binary is required"},
		{"missing binary", []string{"--binary", filepath.Join(dir, "nope"), "--tarball", out}, "no such file"},
		{"binary is a directory", []string{"--binary", dir, "--tarball", out}, "not a regular file"},
		{"binary is a script", []string{"--binary", notELF, "--tarball", out}, "not an ELF executable"},
		{"wrong architecture", []string{"--binary", bin, "--arch", "arm64", "--tarball", out}, "built for EM_X86_64, but the image is for arm64"},
		{"unknown architecture", []string{"--binary", bin, "--arch", "riscv64", "--tarball", out}, "want amd64 or arm64"},
		{"no output", []string{"--binary", bin}, "nothing to do"},
		{"name with slash", []string{"--binary", bin, "--name", "a/b", "--tarball", out}, "must be a plain file name"},
		{"alias with slash", []string{"--binary", bin, "--alias", "x/y", "--tarball", out}, `--alias "x/y": must be a plain file name`},
		{"alias is the name", []string{"--binary", bin, "--name", "webhook", "--alias", "webhook", "--tarball", out}, "/bin/webhook is already in the image"},
		{"alias twice", []string{"--binary", bin, "--alias", "a", "--alias", "a", "--tarball", out}, "/bin/a is already in the image"},
		{"bad repository", []string{"--binary", bin, "--repository", "Eventgate/Calendar", "--tarball", out}, "repository can only contain"},
		{"bad tag", []string{"--binary", bin, "--tag", "v1!", "--tarball", out}, "tag can only contain"},
		{"empty tag", []string{"--binary", bin, "--tag", "", "--tarball", out}, "--tag must not be empty"},
		{"bad push reference", []string{"--binary", bin, "--push", "127.0.0.1:5000/Eventgate:latest"}, `--push "127.0.0.1:5000/Eventgate:latest"`},
		{"env without value", []string{"--binary", bin, "--env", "NOEQUALS", "--tarball", out}, "want KEY=VALUE"},
		{"port not a number", []string{"--binary", bin, "--port", "http", "--tarball", out}, "want a port number"},
		{"port out of range", []string{"--binary", bin, "--port", "70000", "--tarball", out}, "want a port number"},
		{"port protocol", []string{"--binary", bin, "--port", "53/dns", "--tarball", out}, `protocol "dns"`},
		{"stray argument", []string{"--binary", bin, "--tarball", out, "extra"}, "unexpected arguments"},
		{"unknown flag", []string{"--binary", bin, "--tarbal", out}, "flag provided but not defined"},
		{"tarball folder missing", []string{"--binary", bin, "--tarball", filepath.Join(dir, "no", "such", "x.tar")}, "write tarball"},
		{"push denied", []string{"--binary", bin, "--push", deniedHost + "/eventgate/calendar:latest"}, "push " + deniedHost},
	}
	if sh, err := exec.LookPath("sh"); err == nil && !isStatic(t, sh) {
		tests = append(tests, struct {
			name string
			args []string
			want string
		}{"dynamic binary", []string{"--binary", sh, "--tarball", out}, "dynamically linked"})
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			digest, err := runCLI(t, tc.args...)
			if err == nil {
				t.Fatalf("no error, printed %q; want one containing %q", digest, tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %q, want it to contain %q", err, tc.want)
			}
			if digest != "" {
				t.Errorf("printed %q on failure, want nothing", digest)
			}
		})
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("a failed build left %s behind (stat: %v)", out, err)
	}
}

func TestBadSourceDateEpoch(t *testing.T) {
	bin := staticBinary(t)
	t.Setenv("SOURCE_DATE_EPOCH", "yesterday")
	_, err := runCLI(t, "--binary", bin, "--tarball", filepath.Join(t.TempDir(), "x.tar"))
	if err == nil || !strings.Contains(err.Error(), `SOURCE_DATE_EPOCH "yesterday"`) {
		t.Errorf("error = %v, want one about SOURCE_DATE_EPOCH", err)
	}
}
