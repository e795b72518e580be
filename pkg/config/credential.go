package config

import (
	"net/url"
	"strings"
)

// CheckCredential checks a credential that may be written inline (the field at inlinePath,
// set when inlineSet) or read from a Secret (the reference at refPath, nil when absent):
// not both, and a well-formed reference. The inline field of AMQP is the password in its
// URL, hence a flag rather than the value.
func CheckCredential(errs *Errors, inlinePath string, inlineSet bool, refPath string, ref *SecretRef) {
	if ref == nil {
		return
	}
	if inlineSet {
		errs.Addf(refPath, "cannot be used with %s: give the credential inline or from a secret, not both", inlinePath)
	}
	ref.Check(errs, refPath)
}

// URLsHaveUserInfo reports whether a URL of the comma-separated list carries a user name
// or password, which broker clients use over credentials given apart from the URL.
func URLsHaveUserInfo(list string) bool {
	for _, raw := range List(list) {
		if u, err := url.Parse(raw); err == nil && u.User != nil {
			return true
		}
	}
	return false
}

// RedactURLs hides the passwords of a URL, or of a comma-separated list of them, so that
// the URLs can go into errors and logs.
func RedactURLs(list string) string {
	if !strings.Contains(list, "@") {
		return list
	}
	parts := strings.Split(list, ",")
	for i, raw := range parts {
		parts[i] = redactURL(raw)
	}
	return strings.Join(parts, ",")
}

func redactURL(raw string) string {
	if u, err := url.Parse(strings.TrimSpace(raw)); err == nil {
		return strings.Replace(raw, strings.TrimSpace(raw), u.Redacted(), 1)
	}
	// Not a URL: whatever precedes the last '@' may be credentials.
	if at := strings.LastIndex(raw, "@"); at >= 0 {
		return "…" + raw[at:]
	}
	return raw
}
