package config

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// List splits a comma-separated list, as the brokers' clients take their servers, and
// trims each entry. A blank list is nil; an empty entry (a stray comma) stays, for the
// entry's check to report.
func List(s string) []string {
	if strings.TrimSpace(s) == "" {
		return nil
	}
	var out []string
	for _, e := range strings.Split(s, ",") {
		out = append(out, strings.TrimSpace(e))
	}
	return out
}

// CheckList checks the comma-separated list in the field at path: it is required (example
// is a valid value, for the error), and check's error on an entry follows that entry,
// quoted.
func CheckList(errs *Errors, path, list, example string, check func(entry string) error) {
	if strings.TrimSpace(list) == "" {
		errs.Addf(path, "is required, e.g. %s", example)
	}
	for _, e := range List(list) {
		if err := check(e); err != nil {
			errs.Addf(path, "%q %v", e, err)
		}
	}
}

// CheckURL checks one server URL: not empty, a URL, with a host and a scheme that is one
// of schemes (which the error names, in order) or of aliases (accepted without being named:
// other spellings of a named scheme). The error is worded to follow the quoted URL.
func CheckURL(raw string, schemes []string, aliases ...string) error {
	if raw == "" {
		return fmt.Errorf("is empty (a stray comma in the list?)")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("is not a URL: %w", err)
	}
	if !slices.Contains(schemes, u.Scheme) && !slices.Contains(aliases, u.Scheme) {
		return fmt.Errorf("has scheme %q, want %s", u.Scheme, oneOf(schemes))
	}
	if u.Hostname() == "" {
		return fmt.Errorf("has no host")
	}
	return nil
}

// oneOf is "a, b or c".
func oneOf(list []string) string {
	if len(list) < 2 {
		return strings.Join(list, "")
	}
	return strings.Join(list[:len(list)-1], ", ") + " or " + list[len(list)-1]
}
