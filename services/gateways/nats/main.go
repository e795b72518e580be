// The NATS gateway server: an event for every message on a NATS subject.
package main

import "github.com/eventgate/eventgate/pkg/server"

func main() {
	server.Main(newGateway())
}
