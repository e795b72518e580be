package config

import (
	"strings"
	"testing"
)

func TestSecretRefCheck(t *testing.T) {
	for _, tc := range []struct {
		ref  SecretRef
		want string
	}{
		{SecretRef{Name: "creds", Key: "password"}, ""},
		{SecretRef{Name: "creds"}, `x.key: required: the key in Secret "creds"`},
		{SecretRef{Key: "k"}, "x.name: required"},
		{SecretRef{Name: "Creds", Key: "k"}, `x.name: "Creds" is not a Secret name`},
		{SecretRef{Name: "creds", Key: "a/b"}, `x.key: "a/b" is not a Secret key`},
	} {
		var errs Errors
		tc.ref.Check(&errs, "x")
		err := errs.Err()
		if (err == nil) != (tc.want == "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%+v: %v, want %q", tc.ref, err, tc.want)
		}
	}
}
