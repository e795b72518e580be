package main

import (
	"bytes"
	"context"
	"flag"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/eventgate/eventgate/tools/image/publish"
	"github.com/eventgate/eventgate/tools/image/publish/publishtest"
)

// //deploy:push_test runs this test binary with the real images' --image flags, so the very
// images `bazel run //deploy:push` pushes go through a registry here; without any (go test),
// small images stand in for them.
var realImages imageList

func init() {
	flag.Var(&realImages, "image", "NAME=TARBALL: push these images instead of small test ones (repeatable)")
}

func testImages(t *testing.T) []publish.Image {
	t.Helper()
	if len(realImages) > 0 {
		// rules_go starts a test in its package's folder; the paths are from the workspace root.
		root := filepath.Join(os.Getenv("TEST_SRCDIR"), os.Getenv("TEST_WORKSPACE"))
		var images []publish.Image
		for _, im := range realImages {
			if !filepath.IsAbs(im.Tarball) {
				im.Tarball = filepath.Join(root, im.Tarball)
			}
			images = append(images, im)
		}
		return images
	}
	var images []publish.Image
	for _, n := range []string{"webhook", "calendar", "gateway-client"} {
		path, _ := publishtest.TinyImage(t, n)
		images = append(images, publish.Image{Name: n, Tarball: path})
	}
	return images
}

func imageArgs(images []publish.Image) []string {
	var args []string
	for _, im := range images {
		args = append(args, "--image", im.Name+"="+im.Tarball)
	}
	return args
}

func TestPush(t *testing.T) {
	images := testImages(t)
	registry := publishtest.StartRegistry(t) + "/eventgate"
	var stdout bytes.Buffer
	args := append(imageArgs(images), "--registry", registry, "--tag", "v1")
	if err := run(context.Background(), args, &stdout, t.Output()); err != nil {
		t.Fatalf("push %s: %v", strings.Join(args, " "), err)
	}
	t.Logf("printed:\n%s", stdout.String())
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if len(lines) != len(images) {
		t.Fatalf("printed %d lines, want one per image (%d):\n%s", len(lines), len(images), stdout.String())
	}
	for i, im := range images {
		img, err := publish.LoadTarball(im.Tarball)
		if err != nil {
			t.Fatal(err)
		}
		digest, err := img.Digest()
		if err != nil {
			t.Fatal(err)
		}
		if want := registry + "/" + im.Name + ":v1@" + digest.String(); lines[i] != want {
			t.Errorf("line %d = %q, want %q", i, lines[i], want)
		}
		publishtest.CheckPushed(t, lines[i], digest)
	}
}

func TestErrors(t *testing.T) {
	images := testImages(t)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := lis.Addr().String()
	lis.Close() // nothing listens there now
	up := publishtest.StartRegistry(t)

	tests := []struct {
		name string
		args []string
		want []string // parts of the error message
	}{
		{"registry down", append(imageArgs(images), "--registry", down+"/eventgate"),
			[]string{"cannot reach registry " + down, "image " + images[0].Name}},
		{"no registry", imageArgs(images), []string{"--registry is required", "HOST[:PORT]/PREFIX"}},
		{"registry with a scheme", append(imageArgs(images), "--registry", "http://"+up+"/eventgate"), []string{"no scheme"}},
		{"registry not a host", append(imageArgs(images), "--registry", "eventgate/images"), []string{`"eventgate" is not a registry host`}},
		{"bad tag", append(imageArgs(images), "--registry", up+"/eventgate", "--tag", "a b"), []string{"tag can only contain"}},
		{"no images", []string{"--registry", up + "/eventgate"}, []string{"no --image to push"}},
		{"bad image flag", []string{"--image", "webhook", "--registry", up + "/eventgate"}, []string{"want NAME=TARBALL"}},
		{"stray argument", append(imageArgs(images), "--registry", up+"/eventgate", "extra"), []string{"unexpected arguments"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout bytes.Buffer
			err := run(context.Background(), tc.args, &stdout, t.Output())
			if err == nil {
				t.Fatalf("no error; printed %q", stdout.String())
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error = %q, want it to contain %q", err, w)
				}
			}
			if stdout.Len() != 0 {
				t.Errorf("printed %q, want nothing", stdout.String())
			}
		})
	}
}
