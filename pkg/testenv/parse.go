package testenv

import (
	"strings"
	"testing"

	"github.com/eventgate/eventgate/pkg/server"
)

// ParseCase is one event source configuration and what a gateway's Parse must make of it:
// accept it when WantErr is empty, refuse it with an error starting with WantErr otherwise.
type ParseCase struct {
	Name, Data string
	WantErr    string
}

// ExpectParse runs parse (a gateway's Parse) on each case, in a subtest per case.
func ExpectParse(t *testing.T, parse func(name, data string) (server.Source, error), cases []ParseCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			_, err := parse(tc.Name, tc.Data)
			if tc.WantErr == "" {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				return
			}
			if err == nil || !strings.HasPrefix(err.Error(), tc.WantErr) {
				t.Fatalf("Parse error = %v, want prefix %q", err, tc.WantErr)
			}
		})
	}
}
