package secret

import (
	"context"
	"fmt"
	"os"

	"github.com/eventgate/eventgate/pkg/config"
)

// ForGateway is the store of a gateway server process, in namespace (its Env.Namespace):
// FromEnv with the process's environment. A store that cannot be made (a broken
// $KUBECONFIG) does not stop the server, which still validates and runs the sources that
// need no secret; the sources that do fail to start with the reason, and retry.
func ForGateway(namespace string) Store {
	s, err := FromEnv(os.Getenv, namespace)
	if err != nil {
		return broken{err}
	}
	return s
}

type broken struct{ err error }

func (b broken) Get(_ context.Context, ref config.SecretRef) (string, error) {
	return "", fmt.Errorf("%s: no secret store: %w", ref, b.err)
}

// Value is a credential that a source gives either inline or as a reference to a secret
// (two fields, which validation keeps from both being set): the secret's value when ref is
// set, else inline. Sources call it at each connect, not when parsed, so that validation
// needs no cluster, a secret created late is picked up by the next attempt, and a rotated
// one by the next reconnect. The error names field and the secret, never a value.
func Value(ctx context.Context, store Store, field, inline string, ref *config.SecretRef) (string, error) {
	if ref == nil {
		return inline, nil
	}
	if store == nil {
		return "", fmt.Errorf("%s: %s: this gateway server has no secret store", field, ref)
	}
	v, err := store.Get(ctx, *ref)
	if err != nil {
		return "", fmt.Errorf("%s: %w", field, err)
	}
	return v, nil
}
