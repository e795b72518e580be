// The Kafka gateway server: events from the records of a Kafka topic.
package main

import "github.com/eventgate/eventgate/pkg/server"

func main() {
	server.Main(gateway{})
}
