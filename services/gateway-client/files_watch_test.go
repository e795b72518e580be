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
	must(t, os.WriteFile(filepath.Join(dir, "..data_v1", "es.yaml"), sourcesManifest(map[string]string{"a": "one"}), 0o644))
	must(t, os.Symlink("..data_v1", filepath.Join(dir, "..data")))
	must(t, os.Symlink(filepath.Join("..data", "es.yaml"), filepath.Join(dir, "es.yaml")))
	loaded := watchSources(t, filepath.Join(dir, "es.yaml"))
	waitForSource(t, loaded, "one")

	kubeletUpdate(t, dir, "..data_v1", "..data_v2", "two")
	waitForSource(t, loaded, "two")
	// The watch followed the swap: the next one is seen too.
	kubeletUpdate(t, dir, "..data_v2", "..data_v3", "three")
	waitForSource(t, loaded, "three")
}

// kubeletUpdate updates the ConfigMap volume in dir as kubelet does: the new data in folder
// to, its ..data_tmp symlink renamed onto ..data, the old folder from removed.
func kubeletUpdate(t *testing.T, dir, from, to, value string) {
	t.Helper()
	must(t, os.Mkdir(filepath.Join(dir, to), 0o755))
	must(t, os.WriteFile(filepath.Join(dir, to, "es.yaml"), sourcesManifest(map[string]string{"a": value}), 0o644))
	must(t, os.Symlink(to, filepath.Join(dir, "..data_tmp")))
	must(t, os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")))
	must(t, os.RemoveAll(filepath.Join(dir, from)))
}

// The file is a symlink to a file in another folder, and that file is edited in place.
func TestWatchFileFollowsASymlinkToAnotherFolder(t *testing.T) {
	dir, other := t.TempDir(), t.TempDir()
	target := filepath.Join(other, "es.yaml")
	must(t, os.WriteFile(target, sourcesManifest(map[string]string{"a": "one"}), 0o644))
	must(t, os.Symlink(target, filepath.Join(dir, "es.yaml")))
	loaded := watchSources(t, filepath.Join(dir, "es.yaml"))
	waitForSource(t, loaded, "one")

	must(t, os.WriteFile(target, sourcesManifest(map[string]string{"a": "two"}), 0o644))
	waitForSource(t, loaded, "two")
}
