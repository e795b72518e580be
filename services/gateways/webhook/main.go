// The webhook gateway server: HTTP requests to configured endpoints become events.
package main

import (
	"os"

	"github.com/eventgate/eventgate/pkg/server"
)

func main() {
	// The webhook ports bind where the gRPC server binds: every interface in a pod (the
	// Service forwards to them), 127.0.0.1 in local runs.
	server.Main(newGateway(os.Getenv(server.EnvServerHost)))
}
