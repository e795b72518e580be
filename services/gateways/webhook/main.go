// The webhook gateway server: HTTP requests to configured endpoints become events.
package main

import "github.com/eventgate/eventgate/pkg/server"

func main() {
	// The webhook ports bind on GATEWAY_SOURCE_HOST: every interface in a pod (the Service
	// forwards to them) while gRPC stays on loopback; where the gRPC server binds otherwise.
	server.MainFor(func(env server.Env) server.Gateway { return newGateway(env.SourceHost) })
}
