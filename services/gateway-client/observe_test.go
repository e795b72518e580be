package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/eventgate/eventgate/pkg/sensorsink"
	"github.com/eventgate/eventgate/pkg/testenv"
)

// /status speaks as Kubernetes objects do: camelCase keys, and no key for what has not
// happened (a source every server refused never started: no startedAt, no server).
func TestStatusKeys(t *testing.T) {
	gw := testenv.StartGateway(t, everyGateway{})
	sensor := testenv.StartSensor(t, sensorsink.Endpoints{})
	dir := t.TempDir()
	gwFile, cmFile := filepath.Join(dir, "gateway.yaml"), filepath.Join(dir, "event-sources.yaml")
	if err := os.WriteFile(gwFile, []byte(gatewayManifest), 0o644); err != nil {
		t.Fatal(err)
	}
	writeSources(t, cmFile, map[string]string{"running": "every: 5ms", "invalid": "every: [oops"})
	obs := freeLoopbackAddr(t)
	startLocal(t, "--gateway", gwFile, "--event-sources", cmFile, "--server", gw.Addr,
		"--sensor", "every-sensor="+sensor.URL, "--metrics-address", obs)

	var byName map[string]map[string]json.RawMessage
	testenv.Eventually(t, 10*time.Second, 10*time.Millisecond, func() error {
		var sts []map[string]json.RawMessage
		if err := getJSON("http://"+obs+"/status", &sts); err != nil {
			return err
		}
		byName = map[string]map[string]json.RawMessage{}
		for _, st := range sts {
			var name string
			json.Unmarshal(st["name"], &name)
			byName[name] = st
		}
		if string(byName["running"]["startedAt"]) == "" || string(byName["invalid"]["invalid"]) != "true" {
			return fmt.Errorf("/status: running not started or invalid not refused yet: %s", testenv.JSON(t, sts))
		}
		return nil
	})
	for _, tc := range []struct {
		name string
		want []string
	}{
		{"running", []string{"configuredAt", "id", "message", "name", "phase", "server", "startedAt", "updatedAt"}},
		{"invalid", []string{"configuredAt", "id", "invalid", "message", "name", "phase", "updatedAt"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := byName[tc.name]
			if got := slices.Sorted(maps.Keys(st)); !slices.Equal(got, tc.want) {
				t.Errorf("keys %v, want %v; status %s", got, tc.want, testenv.JSON(t, st))
			}
			for _, key := range []string{"configuredAt", "startedAt", "updatedAt"} {
				if raw, ok := st[key]; ok {
					var at time.Time
					if err := json.Unmarshal(raw, &at); err != nil || at.IsZero() || !strings.HasPrefix(string(raw), `"20`) {
						t.Errorf("%s = %s, want a time (%v)", key, raw, err)
					}
				}
			}
		})
	}
}
