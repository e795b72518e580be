package v1alpha1

import (
	"strings"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	valid := []struct {
		name  string
		base  func(*testing.T) *Gateway
		apply func(*Gateway)
	}{
		{name: "webhook example", base: webhookGateway},
		{name: "calendar example", base: calendarGateway},
		{name: "gateway watcher only", base: webhookGateway, apply: func(g *Gateway) {
			g.Spec.Watchers = &NotificationWatchers{Gateways: []GatewayNotificationWatcher{{Name: "gw2", Port: "9300", Endpoint: "/"}}}
		}},
		{name: "event source in another namespace", base: webhookGateway, apply: func(g *Gateway) { g.Spec.EventSource = "other/es" }},
		{name: "NATS without watchers", base: nats},
		{name: "NATS Streaming", base: nats, apply: func(g *Gateway) {
			g.Spec.EventProtocol.NATS = &NATSProtocol{URL: "nats://n:4222", Type: NATSStreaming, ClusterID: "stan", ClientID: "gw"}
		}},
		{name: "sensor delivery, every field", base: webhookGateway, apply: withDelivery(SensorDelivery{Retry: ptr(int32(0)), RetryFor: "10m",
			BackoffPolicy: BackoffLinear, BackoffDelay: "1s", BackoffMaxDelay: "1m", DeadLetterSink: "https://dls.example.com:8443/dead?from=gw"})},
		{name: "sensor delivery, empty", base: webhookGateway, apply: withDelivery(SensorDelivery{})},
	}
	for _, tc := range valid {
		t.Run("valid/"+tc.name, func(t *testing.T) {
			g := tc.base(t)
			if tc.apply != nil {
				tc.apply(g)
			}
			if err := g.Validate(); err != nil {
				t.Errorf("Validate = %v, want nil", err)
			}
		})
	}

	invalid := []struct {
		name    string
		base    func(*testing.T) *Gateway
		apply   func(*Gateway)
		wantErr string // the whole problem: field path and message
	}{
		{"no name", webhookGateway, func(g *Gateway) { g.Name = "" }, "metadata.name: required"},
		{"no type", webhookGateway, func(g *Gateway) { g.Spec.Type = "" }, "spec.type: required: the gateway type, e.g. webhook"},
		{"no event source", webhookGateway, func(g *Gateway) { g.Spec.EventSource = "" }, "spec.eventSource: required"},
		{"malformed event source", webhookGateway, func(g *Gateway) { g.Spec.EventSource = "a/b/c" }, `spec.eventSource: "a/b/c": want a ConfigMap name or namespace/name`},
		{"no processor port", webhookGateway, func(g *Gateway) { g.Spec.ProcessorPort = "" }, "spec.processorPort: required"},
		{"processor port not a number", webhookGateway, func(g *Gateway) { g.Spec.ProcessorPort = "grpc" }, `spec.processorPort: must be a port number (1-65535), got "grpc"`},
		{"processor port out of range", webhookGateway, func(g *Gateway) { g.Spec.ProcessorPort = "70000" }, `spec.processorPort: must be a port number (1-65535), got "70000"`},
		{"no protocol type", webhookGateway, func(g *Gateway) { g.Spec.EventProtocol.Type = "" }, "spec.eventProtocol.type: required: HTTP or NATS"},
		{"unknown protocol type", webhookGateway, func(g *Gateway) { g.Spec.EventProtocol.Type = "Kafka" }, `spec.eventProtocol.type: must be HTTP or NATS, got "Kafka"`},
		{"lower-case protocol type", webhookGateway, func(g *Gateway) { g.Spec.EventProtocol.Type = "http" }, `spec.eventProtocol.type: must be HTTP or NATS, got "http"`},
		{"HTTP without its block", webhookGateway, func(g *Gateway) { g.Spec.EventProtocol.HTTP = nil }, "spec.eventProtocol.http: required for type HTTP"},
		{"HTTP without port", webhookGateway, func(g *Gateway) { g.Spec.EventProtocol.HTTP.Port = "" }, "spec.eventProtocol.http.port: required"},
		{"HTTP bad port", webhookGateway, func(g *Gateway) { g.Spec.EventProtocol.HTTP.Port = "0" }, `spec.eventProtocol.http.port: must be a port number (1-65535), got "0"`},
		{"HTTP without watchers", webhookGateway, func(g *Gateway) { g.Spec.Watchers = nil },
			"spec.watchers: required: a Gateway that dispatches over HTTP needs at least one sensor or gateway to send events to"},
		{"HTTP with empty watchers", webhookGateway, func(g *Gateway) { g.Spec.Watchers = &NotificationWatchers{} }, "spec.watchers: required"},
		{"sensor without name", webhookGateway, func(g *Gateway) {
			g.Spec.Watchers.Sensors = append(g.Spec.Watchers.Sensors, SensorNotificationWatcher{Namespace: "x"})
		}, "spec.watchers.sensors[1].name: required"},
		{"dead-letter sink not a URL", webhookGateway, withDelivery(SensorDelivery{DeadLetterSink: "dead letters"}),
			`spec.watchers.sensors[0].delivery.deadLetterSink: must be an absolute http(s) URL, got "dead letters"`},
		{"dead-letter sink relative", webhookGateway, withDelivery(SensorDelivery{DeadLetterSink: "/dead"}),
			`spec.watchers.sensors[0].delivery.deadLetterSink: must be an absolute http(s) URL, got "/dead"`},
		{"dead-letter sink not http", webhookGateway, withDelivery(SensorDelivery{DeadLetterSink: "nats://n:4222"}),
			`spec.watchers.sensors[0].delivery.deadLetterSink: must be an absolute http(s) URL, got "nats://n:4222"`},
		{"negative retry", webhookGateway, withDelivery(SensorDelivery{Retry: ptr(int32(-1))}),
			"spec.watchers.sensors[0].delivery.retry: must be 0 or more (retries after the first attempt; leave it out to retry for ever), got -1"},
		{"unknown backoff policy", webhookGateway, withDelivery(SensorDelivery{BackoffPolicy: "fibonacci"}),
			`spec.watchers.sensors[0].delivery.backoffPolicy: must be exponential or linear, got "fibonacci"`},
		{"backoff delay not a duration", webhookGateway, withDelivery(SensorDelivery{BackoffDelay: "100"}),
			`spec.watchers.sensors[0].delivery.backoffDelay: must be a positive Go duration, e.g. 500ms or 10m, got "100"`},
		{"negative retry budget", webhookGateway, withDelivery(SensorDelivery{RetryFor: "-1m"}),
			`spec.watchers.sensors[0].delivery.retryFor: must be a positive Go duration, e.g. 500ms or 10m, got "-1m"`},
		{"max delay below the delay", webhookGateway, withDelivery(SensorDelivery{BackoffDelay: "2s", BackoffMaxDelay: "1s"}),
			"spec.watchers.sensors[0].delivery.backoffMaxDelay: must not be shorter than backoffDelay (2s), got 1s"},
		{"gateway watcher without name", webhookGateway, func(g *Gateway) {
			g.Spec.Watchers.Gateways = []GatewayNotificationWatcher{{Port: "9300", Endpoint: "/"}}
		}, "spec.watchers.gateways[0].name: required"},
		{"gateway watcher without endpoint", webhookGateway, func(g *Gateway) {
			g.Spec.Watchers.Gateways = []GatewayNotificationWatcher{{Name: "gw2", Port: "9300"}}
		}, "spec.watchers.gateways[0].endpoint: required"},
		{"gateway watcher bad port", webhookGateway, func(g *Gateway) {
			g.Spec.Watchers.Gateways = []GatewayNotificationWatcher{{Name: "gw2", Port: "http", Endpoint: "/"}}
		}, `spec.watchers.gateways[0].port: must be a port number (1-65535), got "http"`},
		{"NATS without its block", nats, func(g *Gateway) { g.Spec.EventProtocol.NATS = nil }, "spec.eventProtocol.nats: required for type NATS"},
		{"NATS without url", nats, func(g *Gateway) { g.Spec.EventProtocol.NATS.URL = "" }, "spec.eventProtocol.nats.url: required for type NATS"},
		{"NATS unknown type", nats, func(g *Gateway) { g.Spec.EventProtocol.NATS.Type = "JetStream" }, `spec.eventProtocol.nats.type: must be Standard or Streaming, got "JetStream"`},
		{"NATS Streaming without cluster id", nats, func(g *Gateway) {
			g.Spec.EventProtocol.NATS.Type, g.Spec.EventProtocol.NATS.ClientID = NATSStreaming, "gw"
		}, "spec.eventProtocol.nats.clusterId: required for type Streaming"},
		{"NATS Streaming without client id", nats, func(g *Gateway) {
			g.Spec.EventProtocol.NATS.Type, g.Spec.EventProtocol.NATS.ClusterID = NATSStreaming, "stan"
		}, "spec.eventProtocol.nats.clientId: required for type Streaming"},
	}
	for _, tc := range invalid {
		t.Run("invalid/"+tc.name, func(t *testing.T) {
			g := tc.base(t)
			tc.apply(g)
			err := g.Validate()
			if err == nil {
				t.Fatalf("Validate = nil, want %q", tc.wantErr)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Validate = %q, want it to contain %q", err, tc.wantErr)
			}
		})
	}
}

// A user fixes a manifest in one round only if every problem is reported at once.
func TestValidateReportsEveryProblem(t *testing.T) {
	g := webhookGateway(t)
	g.Spec.Type, g.Spec.EventSource, g.Spec.Watchers = "", "", nil
	err := g.Validate()
	if err == nil {
		t.Fatal("Validate = nil")
	}
	problems := strings.Split(err.Error(), "; ")
	for i, want := range []string{"spec.type: ", "spec.eventSource: ", "spec.watchers: "} {
		if i >= len(problems) || !strings.HasPrefix(problems[i], want) {
			t.Errorf("problem %d of %q: want prefix %q", i, err, want)
		}
	}
	if len(problems) != 3 {
		t.Errorf("got %d problems, want 3: %q", len(problems), err)
	}
}

func webhookGateway(t *testing.T) *Gateway {
	g := example(t, "webhook")
	g.Default()
	return g
}

func calendarGateway(t *testing.T) *Gateway {
	g := example(t, "calendar")
	g.Default()
	return g
}

// nats is a minimal valid, defaulted Gateway that dispatches over NATS.
func nats(*testing.T) *Gateway {
	g := &Gateway{Spec: GatewaySpec{
		Type: "calendar", EventSource: "calendar-event-source",
		EventProtocol: EventProtocol{Type: ProtocolNATS, NATS: &NATSProtocol{URL: "nats://nats:4222"}},
	}}
	g.Name = "nats-gateway"
	g.Default()
	return g
}

func withDelivery(d SensorDelivery) func(*Gateway) {
	return func(g *Gateway) { g.Spec.Watchers.Sensors[0].Delivery = &d }
}

func ptr[T any](v T) *T { return &v }

// Defaults are what the field docs say, so that a sensor without a delivery holds its
// events through an outage rather than dropping them.
func TestDeliveryPolicy(t *testing.T) {
	for _, tc := range []struct {
		name string
		d    *SensorDelivery
		want DeliveryPolicy
	}{
		{"none", nil, DeliveryPolicy{Retries: -1, BackoffDelay: 100 * time.Millisecond, BackoffMaxDelay: 30 * time.Second}},
		{"empty", &SensorDelivery{}, DeliveryPolicy{Retries: -1, BackoffDelay: 100 * time.Millisecond, BackoffMaxDelay: 30 * time.Second}},
		{"delay above the default cap", &SensorDelivery{BackoffDelay: "1m"}, DeliveryPolicy{Retries: -1, BackoffDelay: time.Minute, BackoffMaxDelay: time.Minute}},
		{"every field", &SensorDelivery{Retry: ptr(int32(3)), RetryFor: "10m", BackoffPolicy: BackoffLinear, BackoffDelay: "1s", BackoffMaxDelay: "5s", DeadLetterSink: "http://dls/"},
			DeliveryPolicy{Retries: 3, RetryFor: 10 * time.Minute, Linear: true, BackoffDelay: time.Second, BackoffMaxDelay: 5 * time.Second, DeadLetterSink: "http://dls/"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.d.Policy("delivery")
			if err != nil || got != tc.want {
				t.Errorf("Policy = %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

// Every problem of a delivery at once.
func TestDeliveryPolicyReportsEveryProblem(t *testing.T) {
	d := &SensorDelivery{Retry: ptr(int32(-2)), BackoffPolicy: "Exponential", DeadLetterSink: "dls:8080"}
	_, err := d.Policy("x")
	want := `x.retry: must be 0 or more (retries after the first attempt; leave it out to retry for ever), got -2; ` +
		`x.backoffPolicy: must be exponential or linear, got "Exponential"; ` +
		`x.deadLetterSink: must be an absolute http(s) URL, got "dls:8080"`
	if err == nil || err.Error() != want {
		t.Errorf("Policy error = %v, want %s", err, want)
	}
}
