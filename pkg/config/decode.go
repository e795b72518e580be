package config

import (
	"fmt"
	"strings"

	"sigs.k8s.io/yaml"
)

// Decode unmarshals one event source's YAML into out, a pointer to the gateway's config
// struct (whose json tags name the fields). Unknown fields are errors: a misspelt key would
// otherwise be ignored silently and the source would run with a default the user never chose.
// prefix is the config's root in error messages, usually the gateway type.
func Decode(prefix, data string, out any) error {
	if strings.TrimSpace(data) == "" {
		return fmt.Errorf("%s: configuration is empty", prefix)
	}
	if err := yaml.UnmarshalStrict([]byte(data), out); err != nil {
		return fmt.Errorf("%s: invalid configuration: %s", prefix, cleanYAMLError(err))
	}
	return nil
}

// cleanYAMLError drops the "error converting YAML to JSON" style wrappers of sigs.k8s.io/yaml,
// which name its internals rather than the user's mistake.
func cleanYAMLError(err error) string {
	msg := err.Error()
	for _, p := range []string{"error converting YAML to JSON: ", "error unmarshaling JSON: while decoding JSON: ", "error unmarshaling JSON: ", "json: "} {
		msg = strings.TrimPrefix(msg, p)
	}
	return msg
}
