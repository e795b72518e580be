// The AMQP gateway server: events from the messages of a RabbitMQ (AMQP 0-9-1) exchange.
package main

import "github.com/eventgate/eventgate/pkg/server"

func main() {
	server.Main(gateway{})
}
