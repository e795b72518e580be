package config

import (
	"regexp"

	"k8s.io/apimachinery/pkg/util/validation"
)

// SecretRef names one key of a Secret, as Kubernetes' SecretKeySelector and v0.10's configs
// write it: {name, key}. A gateway server resolves it when the source starts (pkg/secret),
// never while validating, so that validation needs no cluster. Its String names the secret,
// never its value, and is safe to log.
type SecretRef struct {
	Name string `json:"name"`
	Key  string `json:"key"`
	// Optional is accepted because SecretKeySelector has it; a secret that a source names is
	// needed all the same, so a missing one is an error either way.
	Optional *bool `json:"optional,omitempty"`
}

// secretKey is what Kubernetes allows as a key of a Secret's data.
var secretKey = regexp.MustCompile(`^[-._a-zA-Z0-9]+$`)

// Check records what is wrong with the reference at path.
func (r *SecretRef) Check(errs *Errors, path string) {
	if r.Name == "" {
		errs.Addf(path+".name", "required: the Secret's name")
	} else if msgs := validation.IsDNS1123Subdomain(r.Name); len(msgs) > 0 {
		errs.Addf(path+".name", "%q is not a Secret name: %s", r.Name, msgs[0])
	}
	if r.Key == "" {
		errs.Addf(path+".key", "required: the key in Secret %q", r.Name)
	} else if len(r.Key) > 253 || !secretKey.MatchString(r.Key) {
		errs.Addf(path+".key", "%q is not a Secret key (letters, digits, '-', '_', '.')", r.Key)
	}
}

func (r SecretRef) String() string { return "secret " + r.Name + "/" + r.Key }
