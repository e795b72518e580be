package config

import (
	"strings"
	"testing"
)

func TestList(t *testing.T) {
	tests := []struct {
		name, list string
		want       []string
	}{
		{name: "blank", list: "  ", want: nil},
		{name: "one", list: "a:1", want: []string{"a:1"}},
		{name: "trimmed", list: " a:1 , b:2", want: []string{"a:1", "b:2"}},
		{name: "stray comma kept", list: "a:1,", want: []string{"a:1", ""}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := List(tc.list)
			if strings.Join(got, "|") != strings.Join(tc.want, "|") || len(got) != len(tc.want) {
				t.Errorf("List(%q) = %q, want %q", tc.list, got, tc.want)
			}
		})
	}
}

func TestCheckURL(t *testing.T) {
	schemes := []string{"nats", "tls", "ws"}
	tests := []struct {
		name, raw, wantErr string
	}{
		{name: "named scheme", raw: "nats://h:4222"},
		{name: "last named scheme", raw: "ws://h"},
		{name: "alias", raw: "natss://h:4222"},
		{name: "empty", raw: "", wantErr: "is empty (a stray comma in the list?)"},
		{name: "not a URL", raw: "nats://h:bad port", wantErr: `is not a URL: parse "nats://h:bad port": invalid port ":bad port" after host`},
		{name: "other scheme", raw: "http://h", wantErr: `has scheme "http", want nats, tls or ws`},
		{name: "no scheme", raw: "h:4222", wantErr: `has scheme "h", want nats, tls or ws`},
		{name: "no host", raw: "nats://:4222", wantErr: "has no host"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckURL(tc.raw, schemes, "natss")
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("CheckURL(%q) = %v", tc.raw, err)
				}
				return
			}
			if err == nil || err.Error() != tc.wantErr {
				t.Fatalf("CheckURL(%q) = %v, want %q", tc.raw, err, tc.wantErr)
			}
		})
	}
}

func TestCheckList(t *testing.T) {
	tests := []struct {
		name, list, wantErr string
	}{
		{name: "valid", list: "nats://a:1, nats://b:2"},
		{name: "missing", list: " ", wantErr: "s.url: is required, e.g. nats://h:4222"},
		{name: "every bad entry", list: "http://a,nats://b:2,", wantErr: `s.url: "http://a" has scheme "http", want nats; s.url: "" is empty (a stray comma in the list?)`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var errs Errors
			CheckList(&errs, "s.url", tc.list, "nats://h:4222", func(e string) error { return CheckURL(e, []string{"nats"}) })
			err := errs.Err()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("CheckList(%q) = %v", tc.list, err)
				}
				return
			}
			if err == nil || err.Error() != tc.wantErr {
				t.Fatalf("CheckList(%q) = %v, want %q", tc.list, err, tc.wantErr)
			}
		})
	}
}
