package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
	"sigs.k8s.io/yaml"

	"github.com/eventgate/eventgate/pkg/apis/gateway/v1alpha1"
	"github.com/eventgate/eventgate/pkg/config"
)

// readGateway reads a Gateway manifest, the file a user would kubectl apply.
func readGateway(path string) (*v1alpha1.Gateway, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read Gateway: %w", err)
	}
	var gw v1alpha1.Gateway
	if err := yaml.UnmarshalStrict(raw, &gw); err != nil {
		return nil, fmt.Errorf("read Gateway %s: %w", path, err)
	}
	gw.Default()
	if err := gw.Validate(); err != nil {
		return nil, fmt.Errorf("Gateway %s: %w", path, err)
	}
	return &gw, nil
}

// eventSources parses the event-source ConfigMap manifest read from path.
func eventSources(path string, raw []byte) (map[string]string, error) {
	data, err := config.ConfigMapData(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return data, nil
}

// watchFile calls changed with the file's content every time it may have changed, first at
// once, until ctx ends. It watches the folder, not the file: editors and kubectl-style tools
// replace files by renaming, which a watch on the file itself would lose.
func watchFile(ctx context.Context, path string, log *slog.Logger, changed func(map[string]string)) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch %s: %w", path, err)
	}
	defer w.Close()
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	// The folder's own symlinks resolved, so that the folder and a target's folder compare
	// as paths: the kernel watches the same folder under both names otherwise.
	dir, err := filepath.EvalSymlinks(filepath.Dir(abs))
	if err != nil {
		return fmt.Errorf("watch %s: %w", filepath.Dir(abs), err)
	}
	abs = filepath.Join(dir, filepath.Base(abs))
	if err := w.Add(dir); err != nil {
		return fmt.Errorf("watch %s: %w", dir, err)
	}
	// A symlinked file is edited where its target lives, which makes no event in its own
	// folder: watch the target's folder too, and follow the target, which moves when a
	// ConfigMap volume swaps its ..data.
	var target, targetDir string
	follow := func() {
		t, err := filepath.EvalSymlinks(abs)
		if err != nil {
			return // gone mid-swap: the swap's own events bring us back
		}
		target = t
		if d := filepath.Dir(t); d != targetDir {
			if targetDir != "" {
				_ = w.Remove(targetDir) // may be gone already, and its watch with it
			}
			targetDir = ""
			if d != dir && w.Add(d) == nil {
				targetDir = d
			}
		}
	}
	// Reloads come on any hint of a change; unchanged bytes are skipped, so that a spurious
	// one neither reapplies the sources nor logs a broken file again.
	var last []byte
	load := func() {
		follow() // before reading, so that no edit falls between the read and the watch
		raw, err := os.ReadFile(abs)
		if err == nil && last != nil && bytes.Equal(raw, last) {
			return
		}
		var data map[string]string
		if err == nil {
			last = raw
			data, err = eventSources(path, raw)
		}
		if err != nil {
			// Keep the sources running as they are: a half-saved file must not stop them.
			log.Error("event sources not reloaded", "file", path, "error", err)
			return
		}
		changed(data)
	}
	load()
	// Saves come as bursts of events; settle before reading.
	var settle <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev := <-w.Events:
			// The file itself, its symlink's target, or a ConfigMap volume's ..data swap
			// (kubelet renames ..data_tmp onto ..data and makes no event for the file).
			name := filepath.Clean(ev.Name)
			if name == abs || name == target || strings.HasPrefix(filepath.Base(name), "..") {
				settle = time.After(100 * time.Millisecond)
			}
		case err := <-w.Errors:
			// An overflow drops events, maybe the file's: reload to be sure.
			log.Warn("file watch error", "error", err)
			settle = time.After(100 * time.Millisecond)
		case <-settle:
			settle = nil
			load()
		}
	}
}
