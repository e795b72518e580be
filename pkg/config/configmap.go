package config

import (
	"fmt"

	"sigs.k8s.io/yaml"
)

// ConfigMapData reads a ConfigMap manifest, the file a user would kubectl apply, and
// returns its data: one event source per key. Locally, the gateway-client and gwcat read
// event sources from such files.
func ConfigMapData(manifest []byte) (map[string]string, error) {
	var cm struct {
		APIVersion string            `json:"apiVersion"`
		Kind       string            `json:"kind"`
		Data       map[string]string `json:"data"`
	}
	if err := yaml.Unmarshal(manifest, &cm); err != nil {
		return nil, fmt.Errorf("read ConfigMap manifest: %s", cleanYAMLError(err))
	}
	if cm.Kind != "ConfigMap" || cm.APIVersion != "v1" {
		return nil, fmt.Errorf("read ConfigMap manifest: got apiVersion %q kind %q, want v1 ConfigMap", cm.APIVersion, cm.Kind)
	}
	return cm.Data, nil
}
