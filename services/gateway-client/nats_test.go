package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/eventgate/eventgate/pkg/dispatch"
	"github.com/eventgate/eventgate/pkg/testenv"
	"github.com/eventgate/eventgate/pkg/testenv/natsenv"
)

// A Gateway whose sensors listen on NATS starts while the NATS server is not up yet: the
// sensor is reported unreachable in /status/sensors and the metrics, the events wait, and
// they are delivered once NATS comes up.
func TestNATSSensorNotUpYetIsWaitedFor(t *testing.T) {
	gw := testenv.StartGateway(t, everyGateway{})
	natsAddr := freeLoopbackAddr(t)
	_, portText, _ := net.SplitHostPort(natsAddr)
	port, err := strconv.Atoi(portText)
	if err != nil {
		t.Fatal(err)
	}
	manifest := strings.Replace(testenv.GatewayManifest("every"), `    type: HTTP
    http:
      port: "9300"
`, `    type: NATS
    nats:
      url: nats://`+natsAddr+`
      subject: sensors.every
`, 1)
	if !strings.Contains(manifest, "type: NATS") {
		t.Fatalf("manifest not rewritten:\n%s", manifest)
	}
	dir := t.TempDir()
	gwFile, cmFile := filepath.Join(dir, "gateway.yaml"), filepath.Join(dir, "event-sources.yaml")
	if err := os.WriteFile(gwFile, []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	writeSources(t, cmFile, map[string]string{"a": "every: 5ms"})
	obs := freeLoopbackAddr(t)
	startLocal(t, "--gateway", gwFile, "--event-sources", cmFile, "--server", gw.Addr, "--metrics-address", obs)

	testenv.Eventually(t, 10*time.Second, 10*time.Millisecond, func() error {
		var sts []dispatch.SensorStatus
		if err := getJSON("http://"+obs+"/status/sensors", &sts); err != nil {
			return err
		}
		if len(sts) != 1 || sts[0].Name != "nats:sensors.every" || sts[0].Reachable || sts[0].Error == "" || sts[0].Pending == 0 {
			return fmt.Errorf("/status/sensors = %+v, want nats:sensors.every unreachable with events pending", sts)
		}
		metrics, err := get("http://" + obs + "/metrics")
		if err != nil {
			return err
		}
		if !strings.Contains(metrics, `eventgate_client_sensor_reachable{sensor="nats:sensors.every"} 0`) {
			return fmt.Errorf("metrics do not report the sensor unreachable")
		}
		return nil
	})

	natsenv.StartServer(t, &natsserver.Options{Port: port})
	nc, err := nats.Connect("nats://" + natsAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	msgs := make(chan *nats.Msg, 1000)
	sub, err := nc.ChanSubscribe("sensors.every", msgs)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		select {
		case <-msgs:
		case <-time.After(30 * time.Second):
			t.Fatalf("%d events delivered over NATS, want 5", i)
		}
	}
	testenv.Eventually(t, 10*time.Second, 10*time.Millisecond, func() error {
		var sts []dispatch.SensorStatus
		if err := getJSON("http://"+obs+"/status/sensors", &sts); err != nil {
			return err
		}
		if len(sts) != 1 || !sts[0].Reachable {
			return fmt.Errorf("/status/sensors = %+v, want the sensor reachable", sts)
		}
		return nil
	})
}
