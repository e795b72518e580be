package config

import (
	"strings"
	"testing"
)

type sample struct {
	Name  string   `json:"name"`
	Count int      `json:"count"`
	Tags  []string `json:"tags"`
}

func TestDecode(t *testing.T) {
	tests := []struct {
		name, data string
		want       sample
		wantErr    string
	}{
		{name: "fields", data: "name: a\ncount: 2\ntags: [x, z]", want: sample{Name: "a", Count: 2, Tags: []string{"x", "z"}}},
		{name: "empty", data: "\n  \n", wantErr: "sample: configuration is empty"},
		{name: "unknown field", data: "nmae: a", wantErr: `sample: invalid configuration: unknown field "nmae"`},
		{name: "wrong type", data: "count: many", wantErr: "sample: invalid configuration: cannot unmarshal string into Go struct field sample.count of type int"},
		{name: "malformed YAML", data: "name: [a", wantErr: "sample: invalid configuration: yaml: line 1: did not find expected ',' or ']'"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got sample
			err := Decode("sample", tc.data, &got)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("Decode error = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Name != tc.want.Name || got.Count != tc.want.Count || strings.Join(got.Tags, ",") != strings.Join(tc.want.Tags, ",") {
				t.Errorf("Decode = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestErrors(t *testing.T) {
	var errs Errors
	if errs.Err() != nil {
		t.Fatal("no problems must give a nil error")
	}
	errs.Addf("a.b", "must be %s", "positive")
	errs.Addf(Index("a.list", 2), "is empty")
	if got, want := errs.Err().Error(), "a.b: must be positive; a.list[2]: is empty"; got != want {
		t.Errorf("Err = %q, want %q", got, want)
	}
}

func TestConfigMapData(t *testing.T) {
	data, err := ConfigMapData([]byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata:\n  one: |-\n    interval: 1s\n"))
	if err != nil {
		t.Fatal(err)
	}
	if data["one"] != "interval: 1s" || len(data) != 1 {
		t.Errorf("data = %q", data)
	}
	if _, err := ConfigMapData([]byte("apiVersion: argoproj.io/v1alpha1\nkind: Gateway\n")); err == nil || !strings.Contains(err.Error(), "want v1 ConfigMap") {
		t.Errorf("a Gateway manifest read as a ConfigMap: %v", err)
	}
	if _, err := ConfigMapData([]byte("data: [")); err == nil {
		t.Error("malformed manifest accepted")
	}
}
