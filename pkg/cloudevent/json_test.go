package cloudevent

import "testing"

func TestIsJSON(t *testing.T) {
	for contentType, want := range map[string]bool{
		"application/json":                   true,
		"application/json; charset=utf-8":    true,
		"text/json":                          true,
		"application/cloudevents+json":       true,
		"application/cloudevents-batch+json": true,
		"text/plain":                         false,
		"application/octet-stream":           false,
		"":                                   false,
		"application/json; charset=\"unterminated": false,
	} {
		if got := IsJSON(contentType); got != want {
			t.Errorf("IsJSON(%q) = %v, want %v", contentType, got, want)
		}
	}
}
