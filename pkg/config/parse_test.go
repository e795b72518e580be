package config

import (
	"errors"
	"testing"
)

// checked is a config whose Validate refuses a negative count, with a field path.
type checked struct {
	Count int `json:"count"`
}

func (c *checked) Validate() error {
	if c.Count < 0 {
		return errors.New("checked.count: must not be negative")
	}
	return nil
}

func TestParse(t *testing.T) {
	tests := []struct {
		name, data string
		want       int
		wantErr    string
	}{
		{name: "valid", data: "count: 3", want: 3},
		{name: "decode error", data: "cuont: 3", wantErr: `checked: invalid configuration: unknown field "cuont"`},
		{name: "empty", data: " ", wantErr: "checked: configuration is empty"},
		{name: "validate error", data: "count: -1", wantErr: "checked.count: must not be negative"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse[checked]("checked", tc.data)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("Parse error = %v, want %q", err, tc.wantErr)
				}
				if got != nil {
					t.Errorf("Parse = %+v with an error, want nil", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Count != tc.want {
				t.Errorf("Parse count = %d, want %d", got.Count, tc.want)
			}
		})
	}
}
