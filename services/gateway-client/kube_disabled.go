//go:build !kubemode

package main

import (
	"context"
	"errors"
	"log/slog"
)

// runKubernetes is missing from this build: Kubernetes mode needs client-go's transport
// modules in go.mod (build with -tags kubemode once they are there).
func runKubernetes(context.Context, clientConfig, *slog.Logger) error {
	return errors.New("this gateway-client was built without Kubernetes mode (build tag kubemode); use --gateway and --event-sources")
}
