package logging

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestNew(t *testing.T) {
	tests := []struct {
		name, level, format string
		wantErr             string
		check               func(t *testing.T, out string)
	}{
		{name: "defaults: text at info", check: func(t *testing.T, out string) {
			if !strings.Contains(out, `level=INFO msg=shown k=v`) || strings.Contains(out, "hidden") {
				t.Errorf("text output %q", out)
			}
		}},
		{name: "json at debug", level: "debug", format: "JSON", check: func(t *testing.T, out string) {
			lines := strings.Split(strings.TrimSpace(out), "\n")
			if len(lines) != 2 {
				t.Fatalf("want the debug and the info line, got %q", out)
			}
			var rec map[string]any
			if err := json.Unmarshal([]byte(lines[1]), &rec); err != nil || rec["msg"] != "shown" || rec["k"] != "v" {
				t.Errorf("json line %q: %v", lines[1], err)
			}
		}},
		{name: "bad level", level: "loud", wantErr: `LOG_LEVEL: "loud" is not one of debug, info, warn, error`},
		{name: "bad format", format: "xml", wantErr: `LOG_FORMAT: "xml" is not text or json`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			env := map[string]string{EnvLevel: tc.level, EnvFormat: tc.format}
			log, err := FromEnv(&buf, func(k string) string { return env[k] })
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("error = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			log.Debug("hidden")
			log.Info("shown", "k", "v")
			tc.check(t, buf.String())
		})
	}
}
