package testenv

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"testing"
)

// Numbered returns n distinct message bodies, prefix-000 onwards from first, for tests
// that publish a batch and then check what arrived.
func Numbered(prefix string, first, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%03d", prefix, first+i)
	}
	return out
}

// Losses counts what of sent never arrived in got, and what arrived more than once: what
// a broker-restart test reports.
func Losses(sent, got []string) (lost, duplicates int) {
	seen := make(map[string]int, len(got))
	for _, g := range got {
		seen[g]++
	}
	for _, s := range sent {
		switch n := seen[s]; {
		case n == 0:
			lost++
		case n > 1:
			duplicates += n - 1
		}
	}
	return lost, duplicates
}

// BodyBytes reverses server.MessageBody: a JSON string is the body's bytes in base64,
// anything else is the body itself (a jsonBody source's JSON).
func BodyBytes(body json.RawMessage) ([]byte, error) {
	var s string
	if json.Unmarshal(body, &s) != nil {
		return body, nil
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("body %s is a string but not base64: %w", body, err)
	}
	return b, nil
}

// JSON is v in JSON, for a test's expected payload: JSON(t, []byte("x")) is the base64
// string a body of bytes becomes.
func JSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Compact is raw without insignificant white space, to compare a payload's JSON with an
// expected text.
func Compact(t testing.TB, raw json.RawMessage) string {
	t.Helper()
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		t.Fatalf("JSON %s: %v", raw, err)
	}
	return b.String()
}
