// The AMQP gateway server: events from the messages of a RabbitMQ (AMQP 0-9-1) exchange.
package main

import (
	"github.com/eventgate/eventgate/pkg/secret"
	"github.com/eventgate/eventgate/pkg/server"
)

func main() {
	server.MainFor(func(env server.Env) server.Gateway {
		return gateway{secrets: secret.ForGateway(env.Namespace)}
	})
}
