package sensorsink_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/protocol"

	"github.com/eventgate/eventgate/pkg/sensorsink"
	"github.com/eventgate/eventgate/pkg/testenv"
)

func TestEndpointsValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		ep   sensorsink.Endpoints
		want string
	}{
		{"HTTP only", sensorsink.Endpoints{HTTP: "127.0.0.1:0"}, ""},
		{"NATS only", sensorsink.Endpoints{NATSURL: "nats://127.0.0.1:4222", NATSSubject: "s"}, ""},
		{"nothing", sensorsink.Endpoints{}, "nothing to listen on: give an HTTP address or a NATS URL"},
		{"bad address", sensorsink.Endpoints{HTTP: "9300"}, `http address "9300": want host:port`},
		{"URL without subject", sensorsink.Endpoints{NATSURL: "nats://x"}, "NATS subject is required with a NATS URL"},
		{"subject without URL", sensorsink.Endpoints{HTTP: ":0", NATSSubject: "s"}, `NATS subject "s" given without a NATS URL`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.ep.Validate()
			if got := fmt.Sprint(err); (err == nil) != (tc.want == "") || (err != nil && got != tc.want) {
				t.Errorf("got %v, want %q", err, tc.want)
			}
		})
	}
}

func TestStartFailsOnABusyPort(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	_, err = sensorsink.New(sensorsink.WithLogger(testenv.Logger(t))).Start(t.Context(), sensorsink.Endpoints{HTTP: lis.Addr().String()})
	if want := "listen on " + lis.Addr().String() + ": "; err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("got %v, want %q...", err, want)
	}
}

// Run is what the sensor process does between start and signal: it must stop promptly
// even with a delivery stalled and a NATS server that never answered.
func TestRunStopsGracefully(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	deadNATS := "nats://" + addr // nothing speaks NATS there once lis is closed
	lis.Close()

	sink := sensorsink.New(sensorsink.WithLogger(testenv.Logger(t)), sensorsink.WithMode(sensorsink.ModeStall), sensorsink.WithShutdownTimeout(5*time.Second))
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ran := make(chan error, 1)
	go func() {
		ran <- sink.Run(ctx, sensorsink.Endpoints{HTTP: addr, NATSURL: deadNATS, NATSSubject: subject})
	}()
	testenv.Eventually(t, 10*time.Second, 10*time.Millisecond, func() error {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	})

	sent := make(chan protocol.Result, 1)
	go func() { sent <- httpSender(t, "http://"+addr+"/", false).Send(t.Context(), newEvent("stalled")) }()
	testenv.Eventually(t, 10*time.Second, 5*time.Millisecond, func() error {
		if sink.Stats().Held != 1 {
			return errors.New("not held yet")
		}
		return nil
	})

	// Without the stall being released, Shutdown would run out its timeout and Run
	// would report that.
	cancel()
	select {
	case err := <-ran:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run still running 10s after its context ended")
	}
	if got := statusOf(<-sent); got != http.StatusServiceUnavailable {
		t.Errorf("stalled sender got %d, want 503", got)
	}
	if _, err := http.Get("http://" + addr + "/healthz"); err == nil {
		t.Error("still serving after Run returned")
	}
}
