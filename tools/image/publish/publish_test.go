package publish_test

import (
	"bytes"
	"context"
	"net"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/eventgate/eventgate/tools/image/publish"
	"github.com/eventgate/eventgate/tools/image/publish/publishtest"
)

func TestPushAll(t *testing.T) {
	var (
		images []publish.Image
		built  = map[string]v1.Hash{}
	)
	for _, n := range []string{"webhook", "calendar", "gateway-client"} {
		path, digest := publishtest.TinyImage(t, n)
		images = append(images, publish.Image{Name: n, Tarball: path})
		built[n] = digest
	}
	for _, tc := range []struct{ prefix, tag string }{
		{"eventgate", "v1"},
		{"team/eventgate", "latest"},
		{"", "v1"}, // the registry's root
	} {
		t.Run(tc.prefix+":"+tc.tag, func(t *testing.T) {
			host := publishtest.StartRegistry(t)
			reg := host
			if tc.prefix != "" {
				reg += "/" + tc.prefix
			}
			target, err := publish.ParseTarget(reg, tc.tag, false)
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			if err := publish.PushAll(context.Background(), target, images, &out); err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimSpace(out.String()), "\n")
			if len(lines) != len(images) {
				t.Fatalf("printed %d lines, want one per image (%d):\n%s", len(lines), len(images), out.String())
			}
			for i, line := range lines {
				im := images[i]
				want := reg + "/" + im.Name + ":" + tc.tag + "@" + built[im.Name].String()
				if line != want {
					t.Errorf("line %d = %q, want %q", i, line, want)
				}
				publishtest.CheckPushed(t, line, built[im.Name])
			}
		})
	}
}

func TestPushAllErrors(t *testing.T) {
	path, _ := publishtest.TinyImage(t, "webhook")
	// A port that was just free: nothing listens there.
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := lis.Addr().String()
	lis.Close()
	up := publishtest.StartRegistry(t)

	tests := []struct {
		name     string
		registry string
		images   []publish.Image
		want     []string // parts of the error
	}{
		{"registry down", down + "/eventgate", []publish.Image{{Name: "webhook", Tarball: path}},
			[]string{"image webhook", "cannot reach registry " + down}},
		{"tarball missing", up + "/eventgate", []publish.Image{{Name: "webhook", Tarball: path + ".nope"}},
			[]string{"image webhook", "load " + path + ".nope"}},
		{"bad image name", up + "/eventgate", []publish.Image{{Name: "Webhook", Tarball: path}},
			[]string{`image "Webhook"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			target, err := publish.ParseTarget(tc.registry, "latest", false)
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			err = publish.PushAll(context.Background(), target, tc.images, &out)
			if err == nil {
				t.Fatalf("no error; printed %q", out.String())
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error = %q, want it to contain %q", err, w)
				}
			}
			if out.Len() != 0 {
				t.Errorf("printed %q for images not pushed", out.String())
			}
		})
	}
}

func TestParseTarget(t *testing.T) {
	tests := []struct {
		registry, tag string
		want          string // "" when valid, else part of the error
		ref           string // for valid ones: what "webhook" becomes
	}{
		{"127.0.0.1:5000/eventgate", "v1", "", "127.0.0.1:5000/eventgate/webhook:v1"},
		{"localhost/eventgate/", "latest", "", "localhost/eventgate/webhook:latest"},
		{"registry.example.com", "latest", "", "registry.example.com/webhook:latest"},
		{"[::1]:5000/eventgate", "latest", "", "[::1]:5000/eventgate/webhook:latest"},
		{"", "latest", "--registry is required", ""},
		{"http://127.0.0.1:5000/eventgate", "latest", "no scheme", ""},
		{"myregistry/eventgate", "latest", `"myregistry" is not a registry host`, ""},
		{"/eventgate", "latest", `"" is not a registry host`, ""},
		{"127.0.0.1:5000/EventGate", "latest", "repository can only contain", ""},
		{"127.0.0.1:5000//x", "latest", `empty path element in "/x"`, ""},
		{"bad host!:5000/eventgate", "latest", `--registry "bad host!:5000/eventgate"`, ""},
		{"127.0.0.1:5000/eventgate", "", "--tag must not be empty", ""},
		{"127.0.0.1:5000/eventgate", "v1!", "tag can only contain", ""},
	}
	for _, tc := range tests {
		t.Run(tc.registry+":"+tc.tag, func(t *testing.T) {
			target, err := publish.ParseTarget(tc.registry, tc.tag, false)
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Errorf("error = %v, want one containing %q", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			ref, err := target.Ref("webhook")
			if err != nil || ref.String() != tc.ref {
				t.Errorf("Ref(webhook) = %v (%v), want %s", ref, err, tc.ref)
			}
		})
	}
}

func TestParseImage(t *testing.T) {
	if im, err := publish.ParseImage("webhook=a/b=c.tar"); err != nil || im != (publish.Image{Name: "webhook", Tarball: "a/b=c.tar"}) {
		t.Errorf("ParseImage = %+v, %v", im, err)
	}
	for _, bad := range []string{"webhook", "=x.tar", "webhook="} {
		if _, err := publish.ParseImage(bad); err == nil || !strings.Contains(err.Error(), "want NAME=TARBALL") {
			t.Errorf("ParseImage(%q) error = %v", bad, err)
		}
	}
}
