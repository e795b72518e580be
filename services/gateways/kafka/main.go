// The Kafka gateway server: events from the records of a Kafka topic.
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
