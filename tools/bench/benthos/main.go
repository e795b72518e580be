// Command benthos is the Benthos stream processor with its core components, built from the
// Go module proxy for tools/bench's Benthos baseline. A module of its own, so that the
// eventgate module never requires Benthos.
package main

import (
	"context"

	_ "github.com/redpanda-data/benthos/v4/public/components/io"
	_ "github.com/redpanda-data/benthos/v4/public/components/pure"
	"github.com/redpanda-data/benthos/v4/public/service"
)

func main() {
	service.RunCLI(context.Background())
}
