package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/eventgate/eventgate/pkg/sensorsink"
	"github.com/eventgate/eventgate/pkg/testenv"
)

// The whole path with the real gateway-client binary: webhook -> gRPC stream -> client ->
// CloudEvent over HTTP -> sensor; a source removed from the ConfigMap file stops answering,
// and comes back when it is added again.
func TestEndToEnd(t *testing.T) {
	gw := testenv.StartGateway(t, newGateway("127.0.0.1"))
	sensor := testenv.StartSensor(t, sensorsink.Endpoints{})
	httpClient := newClient(t)
	port := freePort(t)
	base := "http://127.0.0.1:" + port
	sources := map[string]string{
		"push":    `{endpoint: /push, port: "` + port + `", method: POST}`,
		"deploys": "endpoint: /deploys\nport: " + port + "\nmethod: PUT",
	}
	client := testenv.StartClient(t, testenv.ClientConfig{
		GatewayType: gatewayType,
		Servers:     []string{gw.Addr},
		Sensors:     []string{sensor.URL},
		Sources:     sources,
	})
	waitActive(t, httpClient, base+"/push")
	waitActive(t, httpClient, base+"/deploys")

	const n = 20
	for i := range n {
		method, path := "POST", "/push"
		if i%2 == 1 {
			method, path = "PUT", "/deploys"
		}
		code, body, _ := send(t, httpClient, method, base+path, strings.NewReader(fmt.Sprintf(`{"i": %d}`, i)),
			"Content-Type", "application/json", "X-Request-Id", fmt.Sprint(i))
		if code != 200 {
			t.Fatalf("request %d: %d %s", i, code, body)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	events, err := sensor.Wait(ctx, n)
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != n {
		t.Fatalf("sensor has %d events, want %d", len(events), n)
	}
	seen := map[int]bool{}
	for _, ev := range events {
		var p struct {
			Header map[string][]string `json:"header"`
			Body   struct{ I int }     `json:"body"`
		}
		if err := json.Unmarshal(ev.Data(), &p); err != nil {
			t.Fatalf("event data %s: %v", ev.Data(), err)
		}
		wantSubject := "push"
		if p.Body.I%2 == 1 {
			wantSubject = "deploys"
		}
		if ev.Type() != "webhook" || ev.Source() != "webhook-gateway" || ev.Subject() != wantSubject || ev.DataContentType() != "application/json" {
			t.Errorf("event %d: type %q source %q subject %q content type %q", p.Body.I, ev.Type(), ev.Source(), ev.Subject(), ev.DataContentType())
		}
		if got := p.Header["X-Request-Id"]; len(got) != 1 || got[0] != fmt.Sprint(p.Body.I) {
			t.Errorf("event %d: X-Request-Id %v", p.Body.I, got)
		}
		seen[p.Body.I] = true
	}
	if len(seen) != n {
		t.Errorf("%d distinct events of %d: %v", len(seen), n, seen)
	}

	// Removing a key from the watched file deactivates its route; adding it back restores it.
	client.SetSources(t, map[string]string{"deploys": sources["deploys"]})
	testenv.Eventually(t, 20*time.Second, 20*time.Millisecond, func() error { return probe(httpClient, base+"/push", 404) })
	client.SetSources(t, sources)
	waitActive(t, httpClient, base+"/push")
	sensor.Reset()
	if code, body, _ := send(t, httpClient, "POST", base+"/push", strings.NewReader(`{"i": 100}`)); code != 200 {
		t.Fatalf("re-added route: %d %s", code, body)
	}
	if _, err := sensor.Wait(ctx, 1); err != nil {
		t.Fatal(err)
	}
}

// An event larger than the 4 MiB a gateway-client receives would end the source's stream,
// and with it every request waiting on it. A header of HTML characters near net/http's
// 1 MB limit makes an event of about its size, which is delivered; a request whose event
// would still be too large (a body of control characters, 6 bytes each escaped) is
// answered 413 and not emitted, and the stream carries on.
func TestLargeEvents(t *testing.T) {
	gw := testenv.StartGateway(t, newGateway("127.0.0.1"))
	sensor := testenv.StartSensor(t, sensorsink.Endpoints{})
	httpClient := newClient(t)
	port := freePort(t)
	url := "http://127.0.0.1:" + port + "/hook"
	client := testenv.StartClient(t, testenv.ClientConfig{
		GatewayType: gatewayType,
		Servers:     []string{gw.Addr},
		Sensors:     []string{sensor.URL},
		Sources:     map[string]string{"hook": `{endpoint: /hook, port: "` + port + `", method: POST}`},
	})
	waitActive(t, httpClient, url)

	note := strings.Repeat("<", 900_000)
	if code, body, _ := send(t, httpClient, "POST", url, strings.NewReader(`{"n": 1}`), "X-Note", note); code != 200 {
		t.Errorf("900 kB header of <: %d %.200s, want 200", code, body)
	}
	code, body, _ := send(t, httpClient, "POST", url, bytes.NewReader(bytes.Repeat([]byte{1}, DefaultMaxPayloadSize)))
	if want := "gRPC's default 4 MiB message limit"; code != http.StatusRequestEntityTooLarge || !strings.Contains(body, want) {
		t.Errorf("1 MiB body of \\x01: %d %.300s, want 413 %q", code, body, want)
	}
	if code, body, _ := send(t, httpClient, "POST", url, strings.NewReader(`{"n": 2}`)); code != 200 {
		t.Errorf("after the 413: %d %s, want 200", code, body)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	events, err := sensor.Wait(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 2 {
		t.Errorf("sensor has %d events, want 2 (none for the 413)", len(events))
	}
	for _, ev := range events {
		var p struct {
			Header map[string][]string `json:"header"`
			Body   struct{ N int }     `json:"body"`
		}
		if err := json.Unmarshal(ev.Data(), &p); err != nil {
			t.Fatalf("event data %.200s: %v", ev.Data(), err)
		}
		if got := p.Header["X-Note"]; p.Body.N == 1 && (len(got) != 1 || got[0] != note) {
			t.Errorf("event 1: X-Note of %d bytes, want the request's %d", len(got), len(note))
		}
	}
	if out := client.Output.String(); strings.Contains(out, "ResourceExhausted") {
		t.Errorf("the gateway-client's stream broke:\n%s", out)
	}
}
