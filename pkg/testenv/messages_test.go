package testenv

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestLosses(t *testing.T) {
	tests := []struct {
		name            string
		sent, got       []string
		lost, duplicate int
	}{
		{name: "all once", sent: Numbered("m", 0, 3), got: []string{"m-002", "m-000", "m-001"}},
		{name: "one lost", sent: Numbered("m", 0, 3), got: []string{"m-000", "m-002"}, lost: 1},
		{name: "redelivered", sent: Numbered("m", 0, 2), got: []string{"m-000", "m-001", "m-001", "m-001"}, duplicate: 2},
		{name: "strangers do not count", sent: Numbered("m", 5, 1), got: []string{"probe", "m-005"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if lost, dups := Losses(tc.sent, tc.got); lost != tc.lost || dups != tc.duplicate {
				t.Errorf("Losses = %d lost, %d duplicates; want %d, %d", lost, dups, tc.lost, tc.duplicate)
			}
		})
	}
	if got := strings.Join(Numbered("x", 9, 2), ","); got != "x-009,x-010" {
		t.Errorf("Numbered = %s", got)
	}
}

func TestBodyBytes(t *testing.T) {
	tests := []struct{ body, want, wantErr string }{
		{body: `"AAH/"`, want: "\x00\x01\xff"},
		{body: `{"a":1}`, want: `{"a":1}`},
		{body: `"not base64!"`, wantErr: "is a string but not base64"},
	}
	for _, tc := range tests {
		t.Run(tc.body, func(t *testing.T) {
			got, err := BodyBytes(json.RawMessage(tc.body))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("BodyBytes error = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || string(got) != tc.want {
				t.Errorf("BodyBytes = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}
