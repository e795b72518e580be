// The MQTT gateway server: an event for every message on an MQTT topic filter.
package main

import (
	"github.com/eventgate/eventgate/pkg/secret"
	"github.com/eventgate/eventgate/pkg/server"
)

func main() {
	server.MainFor(func(env server.Env) server.Gateway {
		return &gateway{secrets: secret.ForGateway(env.Namespace)}
	})
}
