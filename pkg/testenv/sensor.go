package testenv

import (
	"context"
	"testing"
	"time"

	"github.com/eventgate/eventgate/pkg/sensorsink"
)

// Sensor is a sensor sink running in the test process: a real HTTP (and optionally NATS)
// endpoint whose received events, stats and mode the test reads and sets directly.
type Sensor struct {
	*sensorsink.Sink
	// URL is where to deliver events over HTTP.
	URL string
	// Stop stops the sink gracefully (stalled deliveries are refused with 503); it is
	// idempotent and also runs at the end of the test.
	Stop func() error
}

// StartSensor serves a new sensor sink on a random 127.0.0.1 port until the test ends.
// ep may add NATS; an empty ep.HTTP means a random loopback port. Logs go to the test log
// only with -v.
func StartSensor(t testing.TB, ep sensorsink.Endpoints, opts ...sensorsink.Option) *Sensor {
	t.Helper()
	if ep.HTTP == "" {
		ep.HTTP = "127.0.0.1:0"
	}
	sink := sensorsink.New(append([]sensorsink.Option{sensorsink.WithLogger(Logger(t))}, opts...)...)
	srv, err := sink.Start(context.Background(), ep)
	if err != nil {
		t.Fatalf("start sensor: %v", err)
	}
	stop := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return srv.Stop(ctx)
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("sensor: %v", err)
		}
	})
	return &Sensor{Sink: sink, URL: srv.URL(), Stop: stop}
}
