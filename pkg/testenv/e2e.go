package testenv

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/eventgate/eventgate/pkg/sensorsink"
	"github.com/eventgate/eventgate/pkg/server"
)

// StartEndToEnd is the setup of a gateway's end-to-end test: gw's server, a sensor, and the
// real gateway-client (a Gateway of gw's type) delivering the one event source name, with
// configuration data, from the server to the sensor. It returns the sensor.
func StartEndToEnd(t testing.TB, gw server.Gateway, name, data string) *Sensor {
	t.Helper()
	server := StartGateway(t, gw)
	sensor := StartSensor(t, sensorsink.Endpoints{})
	StartClient(t, ClientConfig{
		GatewayType: gw.Type(),
		Servers:     []string{server.Addr},
		Sensors:     []string{sensor.URL},
		Sources:     map[string]string{name: data},
	})
	return sensor
}

// WaitJSON waits up to timeout for n events at the sensor and returns those it holds then
// (n or more), with their data decoded into T; it fails the test when they do not come or
// data is not JSON.
func WaitJSON[T any](t testing.TB, s *Sensor, n int, timeout time.Duration) ([]event.Event, []T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	got, err := s.Wait(ctx, n)
	if err != nil {
		t.Fatalf("sensor: %v", err)
	}
	data := make([]T, len(got))
	for i, ev := range got {
		if err := json.Unmarshal(ev.Data(), &data[i]); err != nil {
			t.Fatalf("event %d data %s: %v", i, ev.Data(), err)
		}
	}
	return got, data
}
