package main

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/eventgate/eventgate/pkg/config"
	"github.com/eventgate/eventgate/protos/gateways"
)

// sourceFlags name the event source to send: its YAML, from one of --data, --file or stdin.
type sourceFlags struct {
	data, file, key, name, id, version string
}

// defaultName names a source given inline or on stdin, where there is no key or file name.
const defaultName = "gwcat"

func (s *sourceFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&s.data, "data", "", "the event source's YAML, inline")
	fs.StringVar(&s.file, "file", "", "read the event source from this file (\"-\": stdin): one source's YAML, or a ConfigMap manifest with one source per key")
	fs.StringVar(&s.key, "key", "", "the ConfigMap key to use (needed when the ConfigMap has several)")
	fs.StringVar(&s.name, "name", "", "event source name (default: the ConfigMap key, else the file name without extension, else \""+defaultName+"\")")
	fs.StringVar(&s.id, "id", "", "event source id (default: hex SHA-256 of name + data)")
	fs.StringVar(&s.version, "version", "v0.10", "event source version")
}

// eventSource reads the event source the flags name; dash is a lone "-" among the
// arguments, shorthand for --file -.
func (s *sourceFlags) eventSource(stdin io.Reader, dash bool) (*gateways.EventSource, error) {
	if dash {
		if s.file != "" && s.file != "-" {
			return nil, errors.New("- (stdin) and --file are exclusive: give one event source")
		}
		s.file = "-"
	}
	var (
		raw          []byte
		origin, name string
		err          error
	)
	switch {
	case s.data != "" && s.file != "":
		return nil, errors.New("--data and --file are exclusive: give one event source")
	case s.data != "":
		raw, origin, name = []byte(s.data), "--data", defaultName
	case s.file == "-":
		if raw, err = io.ReadAll(stdin); err != nil {
			return nil, fmt.Errorf("read the event source from stdin: %w", err)
		}
		origin, name = "stdin", defaultName
	case s.file != "":
		if raw, err = os.ReadFile(s.file); err != nil {
			return nil, fmt.Errorf("--file: %w", err)
		}
		base := filepath.Base(s.file)
		origin, name = "--file "+s.file, strings.TrimSuffix(base, filepath.Ext(base))
	default:
		return nil, errors.New("no event source: give --data YAML, --file PATH (one source's YAML or a ConfigMap manifest) or - to read stdin")
	}

	data := string(raw)
	if isConfigMap(raw) {
		if name, data, err = pickKey(raw, s.key, origin); err != nil {
			return nil, err
		}
	} else if s.key != "" {
		return nil, fmt.Errorf("--key %q: %s is not a ConfigMap manifest (apiVersion: v1, kind: ConfigMap)", s.key, origin)
	}
	if s.name != "" {
		name = s.name
	}
	id := s.id
	if id == "" {
		sum := sha256.Sum256([]byte(name + data))
		id = hex.EncodeToString(sum[:])
	}
	return &gateways.EventSource{Id: id, Name: name, Data: data, Version: s.version}, nil
}

// isConfigMap tells a ConfigMap manifest from one source's YAML. A kind alone would not do
// (a resource source watching ConfigMaps has kind: ConfigMap), but no source config has an
// apiVersion. Text that is no YAML mapping is a source config for the server to judge.
func isConfigMap(raw []byte) bool {
	var head struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
	}
	return yaml.Unmarshal(raw, &head) == nil && head.APIVersion != "" && head.Kind == "ConfigMap"
}

// pickKey returns the ConfigMap key to use and its value: --key, or the only key there is.
func pickKey(manifest []byte, key, origin string) (string, string, error) {
	data, err := config.ConfigMapData(manifest)
	if err != nil {
		return "", "", fmt.Errorf("%s: %w", origin, err)
	}
	keys := make([]string, 0, len(data))
	for k := range data {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	switch {
	case key != "":
		value, ok := data[key]
		if !ok {
			return "", "", fmt.Errorf("--key %q: the ConfigMap in %s has no such key; it has: %s", key, origin, strings.Join(keys, ", "))
		}
		return key, value, nil
	case len(keys) == 1:
		return keys[0], data[keys[0]], nil
	case len(keys) == 0:
		return "", "", fmt.Errorf("%s: the ConfigMap has no data, so no event source", origin)
	}
	return "", "", fmt.Errorf("%s: the ConfigMap has %d event sources, choose one with --key: %s", origin, len(keys), strings.Join(keys, ", "))
}
