package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/eventgate/eventgate/pkg/testenv"
)

func sourcesManifest(value string) []byte {
	return []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: es\ndata:\n  a: " + value + "\n")
}

// watchSources runs watchFile on path and returns a func giving the last content it loaded,
// once the first load has come.
func watchSources(t *testing.T, path string) func() map[string]string {
	t.Helper()
	var mu sync.Mutex
	var last map[string]string
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = watchFile(ctx, path, slog.Default(), func(data map[string]string) {
			mu.Lock()
			defer mu.Unlock()
			last = data
		})
	}()
	t.Cleanup(func() { cancel(); <-done })
	loaded := func() map[string]string {
		mu.Lock()
		defer mu.Unlock()
		return last
	}
	testenv.Eventually(t, 5*time.Second, 10*time.Millisecond, func() error {
		if loaded() == nil {
			return fmt.Errorf("no first load")
		}
		return nil
	})
	return loaded
}

func waitForSource(t *testing.T, loaded func() map[string]string, want string) {
	t.Helper()
	testenv.Eventually(t, 5*time.Second, 10*time.Millisecond, func() error {
		if got := loaded()["a"]; got != want {
			return fmt.Errorf("a = %q, want %q", got, want)
		}
		return nil
	})
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// A ConfigMap volume: es.yaml -> ..data/es.yaml, ..data -> ..data_v1. Kubelet updates it by
// renaming a new ..data_tmp symlink onto ..data, which makes no event named es.yaml.
func TestWatchFileFollowsAConfigMapVolumeSwap(t *testing.T) {
	dir := t.TempDir()
	must(t, os.Mkdir(filepath.Join(dir, "..data_v1"), 0o755))
	must(t, os.WriteFile(filepath.Join(dir, "..data_v1", "es.yaml"), sourcesManifest("one"), 0o644))
	must(t, os.Symlink("..data_v1", filepath.Join(dir, "..data")))
	must(t, os.Symlink(filepath.Join("..data", "es.yaml"), filepath.Join(dir, "es.yaml")))
	loaded := watchSources(t, filepath.Join(dir, "es.yaml"))
	waitForSource(t, loaded, "one")

	must(t, os.Mkdir(filepath.Join(dir, "..data_v2"), 0o755))
	must(t, os.WriteFile(filepath.Join(dir, "..data_v2", "es.yaml"), sourcesManifest("two"), 0o644))
	must(t, os.Symlink("..data_v2", filepath.Join(dir, "..data_tmp")))
	must(t, os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")))
	must(t, os.RemoveAll(filepath.Join(dir, "..data_v1")))
	waitForSource(t, loaded, "two")

	// The watch followed the swap: the next one is seen too.
	must(t, os.Mkdir(filepath.Join(dir, "..data_v3"), 0o755))
	must(t, os.WriteFile(filepath.Join(dir, "..data_v3", "es.yaml"), sourcesManifest("three"), 0o644))
	must(t, os.Symlink("..data_v3", filepath.Join(dir, "..data_tmp")))
	must(t, os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")))
	must(t, os.RemoveAll(filepath.Join(dir, "..data_v2")))
	waitForSource(t, loaded, "three")
}

// The file is a symlink to a file in another folder, and that file is edited in place.
func TestWatchFileFollowsASymlinkToAnotherFolder(t *testing.T) {
	dir, other := t.TempDir(), t.TempDir()
	target := filepath.Join(other, "es.yaml")
	must(t, os.WriteFile(target, sourcesManifest("one"), 0o644))
	must(t, os.Symlink(target, filepath.Join(dir, "es.yaml")))
	loaded := watchSources(t, filepath.Join(dir, "es.yaml"))
	waitForSource(t, loaded, "one")

	must(t, os.WriteFile(target, sourcesManifest("two"), 0o644))
	waitForSource(t, loaded, "two")
}
