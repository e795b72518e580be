// The resource gateway server: an event for every change of the Kubernetes objects a
// source watches (added, modified, deleted), through client-go dynamic informers.
package main

import "github.com/eventgate/eventgate/pkg/server"

func main() {
	server.Main(newGateway())
}
