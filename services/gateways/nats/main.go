// The NATS gateway server: an event for every message on a NATS subject.
package main

import (
	"github.com/eventgate/eventgate/pkg/secret"
	"github.com/eventgate/eventgate/pkg/server"
)

func main() {
	server.MainFor(func(env server.Env) server.Gateway {
		gw := newGateway()
		gw.secrets = secret.ForGateway(env.Namespace)
		return gw
	})
}
