package config

import (
	"strings"
	"testing"
)

func TestCheckCredential(t *testing.T) {
	ref := &SecretRef{Name: "creds", Key: "password"}
	for _, tc := range []struct {
		name      string
		inlineSet bool
		ref       *SecretRef
		want      string
	}{
		{name: "inline only", inlineSet: true},
		{name: "secret only", ref: ref},
		{name: "neither"},
		{name: "both", inlineSet: true, ref: ref, want: "x.passwordSecret: cannot be used with x.password: give the credential inline or from a secret, not both"},
		{name: "reference without key", ref: &SecretRef{Name: "creds"}, want: `x.passwordSecret.key: required: the key in Secret "creds"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var errs Errors
			CheckCredential(&errs, "x.password", tc.inlineSet, "x.passwordSecret", tc.ref)
			err := errs.Err()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || err.Error() != tc.want {
				t.Fatalf("error = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestRedactURLs(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"tcp://broker:1883", "tcp://broker:1883"},
		{"amqp://gw:s3cret@host:5672/vh", "amqp://gw:xxxxx@host:5672/vh"},
		{"tcp://a:pw@x:1883, tcp://b:pw@y:1883", "tcp://a:xxxxx@x:1883, tcp://b:xxxxx@y:1883"},
		{"amqp://gw:s3cret@host:port", "…@host:port"},
		{"amqp://gw@host", "amqp://gw@host"},
	} {
		if got := RedactURLs(tc.in); got != tc.want {
			t.Errorf("RedactURLs(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if strings.Contains(RedactURLs(tc.in), "s3cret") {
			t.Errorf("RedactURLs(%q) shows the password", tc.in)
		}
	}
}

func TestURLsHaveUserInfo(t *testing.T) {
	for in, want := range map[string]bool{
		"nats://a:4222":                    false,
		"a:4222, b:4222":                   false,
		"nats://a:4222, nats://u:p@b:4222": true,
		"tcp://user@broker:1883":           true,
		"":                                 false,
	} {
		if got := URLsHaveUserInfo(in); got != want {
			t.Errorf("URLsHaveUserInfo(%q) = %v, want %v", in, got, want)
		}
	}
}
