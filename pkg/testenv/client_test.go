package testenv

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/eventgate/eventgate/pkg/config"
	"github.com/eventgate/eventgate/pkg/sensorsink"
	"github.com/eventgate/eventgate/pkg/server"
)

// countGateway emits count events, numbered from 0, then ends the source.
type countGateway struct{}

func (countGateway) Type() string { return "count" }

func (countGateway) Parse(_, data string) (server.Source, error) {
	var cfg struct {
		Count int `json:"count"`
	}
	if err := config.Decode("count", data, &cfg); err != nil {
		return nil, err
	}
	return countSource(cfg.Count), nil
}

type countSource int

func (n countSource) Start(ctx context.Context, emit server.Emit) error {
	for i := range int(n) {
		if err := emit(ctx, server.Event{Payload: []byte(strconv.Itoa(i))}); err != nil {
			return nil
		}
	}
	<-ctx.Done()
	return nil
}

func TestStartClientDeliversToTheSensor(t *testing.T) {
	gw := StartGateway(t, countGateway{})
	sensor := StartSensor(t, sensorsink.Endpoints{})
	client := StartClient(t, ClientConfig{
		GatewayType: "count",
		Servers:     []string{gw.Addr},
		Sensors:     []string{sensor.URL},
		Sources:     map[string]string{"three": "count: 3"},
	})

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	got, err := sensor.Wait(ctx, 3)
	if err != nil {
		t.Fatalf("waiting for 3 events: %v (got %d)", err, len(sensor.Received()))
	}
	for i, ev := range got {
		if ev.Subject() != "three" || ev.Type() != "count" || ev.Source() != "count-gateway" || string(ev.Data()) != strconv.Itoa(i) {
			t.Errorf("event %d: subject %q type %q source %q data %q", i, ev.Subject(), ev.Type(), ev.Source(), ev.Data())
		}
	}

	// A new key in the watched file starts a new source.
	sensor.Reset()
	client.SetSources(t, map[string]string{"three": "count: 3", "two": "count: 2"})
	if _, err := sensor.Wait(ctx, 2); err != nil {
		t.Fatalf("waiting for the new source's 2 events: %v", err)
	}
	if err := client.Stop(10 * time.Second); err != nil {
		t.Errorf("gateway-client did not stop cleanly on SIGTERM: %v", err)
	}
}
