package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
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

// readEventSources reads the event-source ConfigMap manifest.
func readEventSources(path string) (map[string]string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read event sources: %w", err)
	}
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
	if err := w.Add(filepath.Dir(abs)); err != nil {
		return fmt.Errorf("watch %s: %w", filepath.Dir(abs), err)
	}
	load := func() {
		data, err := readEventSources(abs)
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
			if filepath.Clean(ev.Name) == abs {
				settle = time.After(100 * time.Millisecond)
			}
		case err := <-w.Errors:
			log.Warn("file watch error", "error", err)
		case <-settle:
			settle = nil
			load()
		}
	}
}
