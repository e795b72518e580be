// The artifact gateway server: an event for every record of a MinIO bucket's notifications.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/eventgate/eventgate/pkg/config"
	"github.com/eventgate/eventgate/pkg/secret"
	"github.com/eventgate/eventgate/pkg/server"
)

func main() {
	server.MainFor(func(env server.Env) server.Gateway {
		store, err := secret.FromEnv(os.Getenv, env.Namespace)
		if err != nil {
			// The server still starts and validates; sources fail, retried, with the reason.
			store = brokenStore{err}
		}
		return newGateway(store)
	})
}

// brokenStore is a secret store that could not be set up.
type brokenStore struct{ err error }

func (b brokenStore) Get(_ context.Context, ref config.SecretRef) (string, error) {
	return "", fmt.Errorf("%s: secret store: %w", ref, b.err)
}
