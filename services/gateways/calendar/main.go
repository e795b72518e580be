// The calendar gateway server: events on a cron schedule or at an interval.
package main

import "github.com/eventgate/eventgate/pkg/server"

func main() {
	server.Main(gateway{clock: wallClock{}})
}
