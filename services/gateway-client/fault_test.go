package main

import (
	"context"
	"encoding/json"
	"net"
	"testing"
	"time"

	"github.com/eventgate/eventgate/pkg/sensorsink"
	"github.com/eventgate/eventgate/pkg/testenv"
)

// TestGatewayServerKilledMidStream kills the real calendar gateway server with SIGKILL, as a
// crash or an OOM kill would, and starts it again on its port: the real gateway-client gets
// its source back without a config change, and what reaches the sensor is never repeated
// nor out of order. (Firings while no server runs are never emitted, so they cannot arrive.)
func TestGatewayServerKilledMidStream(t *testing.T) {
	calendar := testenv.Binary(t, "services/gateways/calendar")
	addr := testenv.FreePort(t)
	_, port, _ := net.SplitHostPort(addr)
	startServer := func() *testenv.Process {
		return testenv.StartProcess(t, calendar, nil, "GATEWAY_SERVER_HOST=127.0.0.1", "GATEWAY_SERVER_PORT="+port)
	}
	server := startServer()

	sensor := testenv.StartSensor(t, sensorsink.Endpoints{})
	testenv.StartClient(t, testenv.ClientConfig{
		GatewayType: "calendar",
		Servers:     []string{addr},
		Sensors:     []string{sensor.URL},
		Sources:     map[string]string{"ticks": "interval: 20ms"},
	})

	waitFor := func(n int) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		if _, err := sensor.Wait(ctx, n); err != nil {
			t.Fatalf("waiting for %d events: %v (got %d)", n, err, len(sensor.Received()))
		}
	}
	waitFor(10)
	server.Kill()
	killedAt := len(sensor.Received())

	server = startServer()
	waitFor(killedAt + 10)
	server.Stop(10 * time.Second)

	// Every firing has its own time: a repeated or reordered event shows as a time that
	// does not increase.
	var last time.Time
	for i, ev := range sensor.Received() {
		var p struct {
			EventTime time.Time `json:"eventTime"`
		}
		if err := json.Unmarshal(ev.Data(), &p); err != nil {
			t.Fatalf("event %d: %v: %s", i, err, ev.Data())
		}
		if !p.EventTime.After(last) {
			t.Fatalf("event %d fired at %s, not after the one before it (%s): repeated or out of order", i, p.EventTime, last)
		}
		last = p.EventTime
	}
	t.Logf("delivered %d events across the kill (%d before it), none repeated or out of order", len(sensor.Received()), killedAt)
}
