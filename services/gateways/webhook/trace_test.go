package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/eventgate/eventgate/pkg/testenv"
	"github.com/eventgate/eventgate/pkg/tracing"
	"github.com/eventgate/eventgate/pkg/tracing/otlptest"
)

const (
	incomingTrace  = "4bf92f3577b34da6a3ce929d0e0e4736"
	incomingSpan   = "00f067aa0ba902b7"
	incomingParent = "00-" + incomingTrace + "-" + incomingSpan + "-01"
)

// traceSensor is a sensor that records the trace headers of each request it takes, by the
// event's X-Request-Id.
type traceSensor struct {
	URL string
	mu  sync.Mutex
	got map[string]traceHeaders
}

type traceHeaders struct {
	traceparent, tracestate, ceTraceparent, extension string
}

func startTraceSensor(t *testing.T) *traceSensor {
	s := &traceSensor{got: map[string]traceHeaders{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ev, err := cehttp.NewEventFromHTTPRequest(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var p payload
		if err := ev.DataAs(&p); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		ext, _ := ev.Extensions()[tracing.TraceParent].(string)
		s.mu.Lock()
		s.got[p.Header.Get("X-Request-Id")] = traceHeaders{r.Header.Get("Traceparent"), r.Header.Get("Tracestate"), r.Header.Get("Ce-Traceparent"), ext}
		s.mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	s.URL = srv.URL
	return s
}

func (s *traceSensor) headers(t *testing.T, id string) traceHeaders {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	h, ok := s.got[id]
	if !ok {
		t.Fatalf("the sensor did not get request %s", id)
	}
	return h
}

// startTracePath runs the webhook gateway gw, the real gateway-client and a sensor, and
// returns the webhook's URL.
func startTracePath(t *testing.T, gw *testenv.Gateway) (*traceSensor, *http.Client, string) {
	sensor := startTraceSensor(t)
	port := freePort(t)
	url := "http://127.0.0.1:" + port + "/push"
	testenv.StartClient(t, testenv.ClientConfig{
		GatewayType: gatewayType,
		Servers:     []string{gw.Addr},
		Sensors:     []string{sensor.URL},
		Sources:     map[string]string{"push": `{endpoint: /push, port: "` + port + `", method: POST}`},
	})
	httpClient := newClient(t)
	waitActive(t, httpClient, url)
	return sensor, httpClient, url
}

// With span export off, the trace context of a webhook request reaches the sensor as it
// came, as the W3C headers tracers read and as the CloudEvent's distributed tracing
// extension (ce-traceparent); a request without one, or with a malformed one, brings none.
func TestTraceContextReachesTheSensor(t *testing.T) {
	t.Setenv(tracing.EndpointEnv, "")
	t.Setenv(tracing.TracesEndpointEnv, "")
	sensor, httpClient, url := startTracePath(t, testenv.StartGateway(t, newGateway("127.0.0.1")))
	for _, tc := range []struct {
		id, traceparent string
		want            traceHeaders
	}{
		{"traced", incomingParent, traceHeaders{incomingParent, "vendor=1", incomingParent, incomingParent}},
		{"untraced", "", traceHeaders{}},
		{"malformed", "00-xyz-01", traceHeaders{}},
	} {
		t.Run(tc.id, func(t *testing.T) {
			header := []string{"Content-Type", "application/json", "X-Request-Id", tc.id}
			if tc.traceparent != "" {
				header = append(header, "Traceparent", tc.traceparent, "Tracestate", "vendor=1")
			}
			if code, body, _ := send(t, httpClient, "POST", url, strings.NewReader(`{}`), header...); code != 200 {
				t.Fatalf("%d %s", code, body)
			}
			// 200 means the client acknowledged it: the sensor took it.
			if got := sensor.headers(t, tc.id); got != tc.want {
				t.Errorf("sensor got %+v, want %+v", got, tc.want)
			}
		})
	}
}

// With OTEL_EXPORTER_OTLP_ENDPOINT set, the gateway exports receive and stream spans and
// the client a deliver span, all in the incoming request's trace and linked parent to
// child: caller -> receive -> stream -> deliver -> the sensor's request.
func TestSpansExported(t *testing.T) {
	collector := otlptest.Start(t)
	t.Setenv(tracing.EndpointEnv, collector.Endpoint)
	t.Setenv(tracing.TracesEndpointEnv, "")
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "20") // ms: export at once, not every 5 s
	// Both processes as in a pod: the environment is all that turns export on.
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	gw, _ := testenv.StartGatewayProcess(t, exe, nil, runAsGateway+"=1", "GATEWAY_SOURCE_HOST=127.0.0.1")
	sensor, httpClient, url := startTracePath(t, gw)

	if code, body, _ := send(t, httpClient, "POST", url, strings.NewReader(`{}`),
		"X-Request-Id", "traced", "Traceparent", incomingParent); code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	byName := map[string]otlptest.Span{}
	testenv.Eventually(t, 10*time.Second, 20*time.Millisecond, func() error {
		for _, s := range collector.Spans() {
			byName[s.Name] = s
		}
		if len(byName) < 3 {
			return fmt.Errorf("spans so far: %v", byName)
		}
		return nil
	})
	receive, stream, deliver := byName["receive"], byName["stream"], byName["deliver"]
	for _, s := range []otlptest.Span{receive, stream, deliver} {
		if s.TraceID != incomingTrace {
			t.Errorf("span %s in trace %s, want the request's %s", s.Name, s.TraceID, incomingTrace)
		}
	}
	if receive.ParentID != incomingSpan || receive.Service != "webhook-gateway" {
		t.Errorf("receive: parent %s service %q, want the request's span %s in webhook-gateway", receive.ParentID, receive.Service, incomingSpan)
	}
	if stream.ParentID != receive.SpanID {
		t.Errorf("stream: parent %s, want receive %s", stream.ParentID, receive.SpanID)
	}
	if deliver.ParentID != stream.SpanID || deliver.Service != "gateway-client" || deliver.Attributes["eventgate.sensor"] != sensor.URL {
		t.Errorf("deliver: parent %s service %q attributes %v, want stream %s in gateway-client", deliver.ParentID, deliver.Service, deliver.Attributes, stream.SpanID)
	}
	got := sensor.headers(t, "traced")
	if want := "00-" + incomingTrace + "-" + deliver.SpanID + "-01"; got.traceparent != want {
		t.Errorf("sensor's traceparent %s, want the deliver span's %s", got.traceparent, want)
	}
	if want := "00-" + incomingTrace + "-" + stream.SpanID + "-01"; got.ceTraceparent != want || got.extension != want {
		t.Errorf("sensor's ce-traceparent %s (extension %s), want the stream span's %s", got.ceTraceparent, got.extension, want)
	}
}
