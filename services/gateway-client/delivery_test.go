package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/eventgate/eventgate/pkg/apis/gateway/v1alpha1"
	"github.com/eventgate/eventgate/pkg/dispatch"
	"github.com/eventgate/eventgate/pkg/sensorsink"
	"github.com/eventgate/eventgate/pkg/testenv"
	"github.com/eventgate/eventgate/protos/gateways"
)

// withSensorDelivery is gatewayManifest with delivery (YAML, indented as its fields) for
// every-sensor.
func withSensorDelivery(delivery string) string {
	var b strings.Builder
	for _, line := range strings.Split(strings.TrimSpace(delivery), "\n") {
		b.WriteString("          " + strings.TrimSpace(line) + "\n")
	}
	return strings.Replace(gatewayManifest, "      - name: every-sensor\n", "      - name: every-sensor\n        delivery:\n"+b.String(), 1)
}

func TestDeliveryFlagsAreCheckedAsTheGatewayFields(t *testing.T) {
	local := []string{"--gateway", "g", "--event-sources", "e"}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"negative retry", []string{"--sensor-retry", "-1"},
			`invalid value "-1" for flag -sensor-retry: must be 0 or more (retries after the first attempt; leave it out to retry for ever), got -1`},
		{"retry not a number", []string{"--sensor-retry", "s=many"}, `invalid value "s=many" for flag -sensor-retry: "many" is not a number`},
		{"unknown backoff policy", []string{"--sensor-backoff-policy", "s=fibonacci"},
			`invalid value "s=fibonacci" for flag -sensor-backoff-policy: must be exponential or linear, got "fibonacci"`},
		{"dead-letter sink not a URL", []string{"--sensor-dead-letter-sink", "s=dead-letters"},
			`invalid value "s=dead-letters" for flag -sensor-dead-letter-sink: must be an absolute http(s) URL, got "dead-letters"`},
		{"retry budget not a duration", []string{"--sensor-retry-for", "10"},
			`invalid value "10" for flag -sensor-retry-for: must be a positive Go duration, e.g. 500ms or 10m, got "10"`},
		{"backoff delay", []string{"--sensor-backoff-delay", "0s"},
			`invalid value "0s" for flag -sensor-backoff-delay: must be a positive Go duration, e.g. 500ms or 10m, got "0s"`},
		{"backoff max delay", []string{"--sensor-backoff-max-delay", "x=soon"},
			`invalid value "x=soon" for flag -sensor-backoff-max-delay: must be a positive Go duration, e.g. 500ms or 10m, got "soon"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseFlags(append(slices.Clone(local), tc.args...), noEnv)
			if err == nil || err.Error() != tc.want {
				t.Errorf("parseFlags(%q) = %v, want %q", tc.args, err, tc.want)
			}
		})
	}
}

// Each field comes from the flag naming the sensor, else from its watcher's delivery, else
// from the flag for every sensor, else the default.
func TestTargetsTakeTheirDeliveryPolicy(t *testing.T) {
	gw := &v1alpha1.Gateway{Spec: v1alpha1.GatewaySpec{
		Type: "every", EventSource: "es",
		EventProtocol: v1alpha1.EventProtocol{Type: v1alpha1.ProtocolHTTP, HTTP: &v1alpha1.HTTPProtocol{Port: "9300"}},
		Watchers: &v1alpha1.NotificationWatchers{Sensors: []v1alpha1.SensorNotificationWatcher{
			{Name: "a", Delivery: &v1alpha1.SensorDelivery{Retry: ptr(int32(2)), DeadLetterSink: "http://dls-a/", BackoffDelay: "1s"}},
			{Name: "b"},
		}},
	}}
	gw.Name = "gw"
	cfg, err := parseFlags([]string{"--gateway", "g", "--event-sources", "e", "--sensor", "c=http://c/",
		"--sensor-retry", "7", "--sensor-dead-letter-sink", "a=http://dls-a2/?from=a", "--sensor-backoff-policy", "c=linear",
		"--sensor-retry-for", "1m"}, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	tgts, err := targets(gw, "ns", cfg.sensors, cfg.delivery)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]dispatch.Policy{}
	for _, tg := range tgts {
		byName[tg.Name] = tg.Policy
	}
	type want struct {
		attempts int
		dls      string
		initial  time.Duration
		linear   bool
	}
	for name, w := range map[string]want{
		"a": {3, "http://dls-a2/?from=a", time.Second, false}, // retry 2 of the watcher, the named flag's sink
		"b": {8, "", 100 * time.Millisecond, false},           // the flag for every sensor
		"c": {8, "", 100 * time.Millisecond, true},            // an extra --sensor
	} {
		p := byName[name]
		dls := ""
		if p.DeadLetter != nil {
			dls = p.DeadLetter.String()
		}
		if p.MaxAttempts != w.attempts || dls != w.dls || p.Backoff.Initial != w.initial || p.Backoff.Linear != w.linear || p.RetryFor != time.Minute {
			t.Errorf("sensor %s: policy %+v (sink %q), want %d attempts, sink %q, first wait %s, linear %v, retry for 1m", name, p, dls, w.attempts, w.dls, w.initial, w.linear)
		}
	}

	cfg, err = parseFlags([]string{"--gateway", "g", "--event-sources", "e", "--sensor-retry", "zz=1", "--sensor-retry", "b=1"}, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := targets(gw, "ns", cfg.sensors, cfg.delivery); err == nil || err.Error() != "--sensor-* flags name zz, which is no sensor of the gateway" {
		t.Errorf("targets with a flag for sensor zz = %v, want it refused, named", err)
	}

	// Fields fine alone, wrong together: named with where they came from.
	cfg, err = parseFlags([]string{"--gateway", "g", "--event-sources", "e", "--sensor-backoff-max-delay", "a=500ms"}, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	wantErr := "spec.watchers.sensors[0].delivery with the --sensor-* flags of sensor a.backoffMaxDelay: must not be shorter than backoffDelay (1s), got 500ms"
	if _, err := targets(gw, "ns", cfg.sensors, cfg.delivery); err == nil || err.Error() != wantErr {
		t.Errorf("targets = %v, want %q", err, wantErr)
	}
}

func ptr[T any](v T) *T { return &v }

func TestLocalModeRefusesABadDelivery(t *testing.T) {
	dir := t.TempDir()
	gwFile, cmFile := filepath.Join(dir, "gateway.yaml"), filepath.Join(dir, "event-sources.yaml")
	if err := os.WriteFile(gwFile, []byte(withSensorDelivery("retry: -1\nbackoffPolicy: fibonacci\ndeadLetterSink: dead")), 0o644); err != nil {
		t.Fatal(err)
	}
	writeSources(t, cmFile, map[string]string{"a": "every: 1h"})
	cfg, err := parseFlags([]string{"--gateway", gwFile, "--event-sources", cmFile, "--metrics-address", ""}, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	err = runLocal(t.Context(), cfg, testenv.Logger(t))
	for _, field := range []string{"spec.watchers.sensors[0].delivery.retry: ", "spec.watchers.sensors[0].delivery.backoffPolicy: ", "spec.watchers.sensors[0].delivery.deadLetterSink: "} {
		if err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("runLocal = %v, want it to name %s", err, field)
		}
	}
}

// collectAcks reads n acks from srv, failing unless each of seq 1..n comes once.
func collectAcks(t *testing.T, srv *ackServer, n int) map[uint64]gotAck {
	t.Helper()
	got := map[uint64]gotAck{}
	for len(got) < n {
		select {
		case a := <-srv.acks:
			if _, dup := got[a.seq]; dup || a.seq < 1 || a.seq > uint64(n) {
				t.Fatalf("ack %+v (acked before: %v), want each of seq 1..%d once", a, got, n)
			}
			got[a.seq] = a
		case <-time.After(30 * time.Second):
			t.Fatalf("acks %v, want seq 1..%d", got, n)
		}
	}
	return got
}

func metricValue(t *testing.T, obs, series string) string {
	t.Helper()
	v, err := scrape(obs, series)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// scrape is the value of series on the client's /metrics at obs, "" when it has none.
func scrape(obs, series string) (string, error) {
	body, err := get("http://" + obs + "/metrics")
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			return v, nil
		}
	}
	return "", nil
}

// An event the sensor does not take, with no dead-letter sink: dropped, counted, and
// acknowledged to the gateway server as DROPPED, so that the source moves on.
func TestGivenUpEventsAreAckedDropped(t *testing.T) {
	for _, tc := range []struct {
		name     string
		status   int
		args     []string
		attempts int
		reason   string
	}{
		{"400 is not retried", http.StatusBadRequest, nil, 1, "rejected"},
		{"503 until the retries are used up", http.StatusServiceUnavailable,
			[]string{"--sensor-retry", "every-sensor=2", "--sensor-backoff-delay", "1ms"}, 3, "retries_exhausted"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sensor, url := startAckSensor(t, tc.status)
			srv := &ackServer{events: 4, sensor: sensor, windows: make(chan uint32, 10), acks: make(chan gotAck, 100)}
			addr := serveGRPC(t, func(g *grpc.Server) { gateways.RegisterEventingServer(g, srv) })
			obs := freeLoopbackAddr(t)
			startAckClient(t, addr, url, append([]string{"--metrics-address", obs}, tc.args...)...)

			for seq, a := range collectAcks(t, srv, srv.events) {
				if a.outcome != gateways.Ack_OUTCOME_DROPPED {
					t.Errorf("seq %d acked %s, want DROPPED", seq, a.outcome)
				}
			}
			if n := int(sensor.requests.Load()); n != srv.events*tc.attempts {
				t.Errorf("sensor asked %d times, want %d (%d events, %d attempts each)", n, srv.events*tc.attempts, srv.events, tc.attempts)
			}
			series := fmt.Sprintf(`eventgate_client_events_dropped_total{reason=%q,sensor="every-sensor"}`, tc.reason)
			if v := metricValue(t, obs, series); v != fmt.Sprint(srv.events) {
				t.Errorf("%s = %q, want %d", series, v, srv.events)
			}
			var sensors []dispatch.SensorStatus
			if err := getJSON("http://"+obs+"/status/sensors", &sensors); err != nil {
				t.Fatal(err)
			}
			if len(sensors) != 1 || sensors[0].Dropped != int64(srv.events) || sensors[0].Retries != int64(srv.events*(tc.attempts-1)) {
				t.Errorf("/status/sensors %+v, want %d dropped, %d retries", sensors, srv.events, srv.events*(tc.attempts-1))
			}
		})
	}
}

// With the Gateway's deadLetterSink, an event the sensor refuses goes there, and is
// acknowledged DROPPED only once the sink took it: a sink that fails holds the acks.
func TestDeadLetteredEventsAreAckedOnceTheSinkTookThem(t *testing.T) {
	sensor, url := startAckSensor(t, http.StatusBadRequest)
	dls := testenv.StartSensor(t, sensorsink.Endpoints{}, sensorsink.WithMode(sensorsink.ModeFail))
	srv := &ackServer{events: 3, sensor: sensor, windows: make(chan uint32, 10), acks: make(chan gotAck, 100)}
	addr := serveGRPC(t, func(g *grpc.Server) { gateways.RegisterEventingServer(g, srv) })
	dir := t.TempDir()
	gwFile, cmFile := filepath.Join(dir, "gateway.yaml"), filepath.Join(dir, "event-sources.yaml")
	manifest := withSensorDelivery("deadLetterSink: " + dls.URL + "\nbackoffDelay: 5ms")
	if err := os.WriteFile(gwFile, []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	writeSources(t, cmFile, map[string]string{"a": "every: 1h"})
	obs := freeLoopbackAddr(t)
	startLocal(t, "--gateway", gwFile, "--event-sources", cmFile, "--server", addr,
		"--sensor", "every-sensor="+url, "--metrics-address", obs)

	testenv.Eventually(t, 10*time.Second, 5*time.Millisecond, func() error {
		v, err := scrape(obs, `eventgate_client_dead_letter_failures_total{sensor="every-sensor"}`)
		if n, _ := strconv.Atoi(v); err == nil && n < 3 {
			err = fmt.Errorf("dead-letter failures %q, want 3 or more", v)
		}
		return err
	})
	select {
	case a := <-srv.acks:
		t.Fatalf("ack %+v while the dead-letter sink fails", a)
	default:
	}
	dls.SetMode(sensorsink.ModeOK)
	for seq, a := range collectAcks(t, srv, srv.events) {
		if a.outcome != gateways.Ack_OUTCOME_DROPPED {
			t.Errorf("seq %d acked %s, want DROPPED", seq, a.outcome)
		}
	}
	var ids []string
	for _, ev := range dls.Received() {
		ids = append(ids, ev.ID())
		if code := fmt.Sprint(ev.Extensions()[dispatch.ExtensionErrorCode]); code != "400" {
			t.Errorf("%s: %s = %q, want 400", ev.ID(), dispatch.ExtensionErrorCode, code)
		}
	}
	// One source, no ordering key: the source's order, in the sink too.
	if want := []string{eventID(1), eventID(2), eventID(3)}; !slices.Equal(ids, want) {
		t.Errorf("dead-letter sink took %v, want %v", ids, want)
	}
	if n := int(sensor.requests.Load()); n != srv.events {
		t.Errorf("sensor asked %d times, want %d (a 400 is not retried)", n, srv.events)
	}
}

// In Kubernetes, the API server refuses what the schema can tell (a negative retry, an
// unknown backoff policy), naming the field; the client refuses the rest (a sink that is no
// URL) and sets the Gateway's phase to Error, naming the field.
func TestKubernetesModeRefusesABadDelivery(t *testing.T) {
	k := newKubeTest(t)
	for field, delivery := range map[string]string{
		"spec.watchers.sensors[0].delivery.retry":         "retry: -1",
		"spec.watchers.sensors[0].delivery.backoffPolicy": "backoffPolicy: fibonacci",
	} {
		var obj map[string]any
		if err := yaml.Unmarshal([]byte(withSensorDelivery(delivery)), &obj); err != nil {
			t.Fatal(err)
		}
		_, err := k.dyn.Resource(gatewaysGVR).Namespace(k.ns).Create(context.Background(), &unstructured.Unstructured{Object: obj}, metav1.CreateOptions{})
		if err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("create with %s: %v, want it refused naming %s", delivery, err, field)
		}
	}

	k.create(t, gatewaysGVR, withSensorDelivery("deadLetterSink: dead-letters"))
	cfg, err := parseFlags([]string{"--gateway-name", "every-gateway", "--namespace", k.ns, "--metrics-address", ""}, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err = runKube(ctx, cfg, k.grant(t, "get", "patch"), testenv.Logger(t))
	want := "Gateway " + k.ns + `/every-gateway cannot run: spec.watchers.sensors[0].delivery.deadLetterSink: must be an absolute http(s) URL, got "dead-letters"`
	if err == nil || err.Error() != want {
		t.Fatalf("runKube = %v, want %q", err, want)
	}
	st, err := k.gatewayStatus("every-gateway")
	if err != nil {
		t.Fatal(err)
	}
	if st.Phase != v1alpha1.NodePhaseError || !strings.Contains(st.Message, "spec.watchers.sensors[0].delivery.deadLetterSink") {
		t.Errorf("status %s %q, want Error naming the field", st.Phase, st.Message)
	}
}

// The whole path with the real webhook gateway: a request whose event the sensor refuses
// is answered 200 once the event was dead-lettered (or, without a sink, dropped), which the
// gateway learns from the DROPPED acknowledgement; the caller does not resend it.
func TestWebhookRequestOfARefusedEventIsAnswered(t *testing.T) {
	webhook := testenv.Binary(t, "services/gateways/webhook")
	for _, withSink := range []bool{true, false} {
		t.Run(fmt.Sprintf("dead-letter sink %v", withSink), func(t *testing.T) {
			gw, _ := testenv.StartGatewayProcess(t, webhook, nil)
			sensor, url := startAckSensor(t, http.StatusBadRequest)
			dls := testenv.StartSensor(t, sensorsink.Endpoints{})
			port := strings.TrimPrefix(testenv.FreePort(t), "127.0.0.1:")
			dir := t.TempDir()
			gwFile, cmFile := filepath.Join(dir, "gateway.yaml"), filepath.Join(dir, "event-sources.yaml")
			if err := os.WriteFile(gwFile, []byte(gatewayManifest), 0o644); err != nil {
				t.Fatal(err)
			}
			writeSources(t, cmFile, map[string]string{"hook": `{endpoint: /hook, port: "` + port + `", method: POST}`})
			args := []string{"--gateway", gwFile, "--event-sources", cmFile, "--server", "webhook=" + gw.Addr,
				"--sensor", "every-sensor=" + url, "--metrics-address", ""}
			if withSink {
				args = append(args, "--sensor-dead-letter-sink", "every-sensor="+dls.URL)
			}
			startLocal(t, args...)
			hook := "http://127.0.0.1:" + port + "/hook"
			testenv.Eventually(t, 10*time.Second, 5*time.Millisecond, func() error {
				resp, err := http.Get(hook) // a POST endpoint: 405 once it listens
				if err != nil {
					return err
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusMethodNotAllowed {
					return fmt.Errorf("GET %s: %d, want 405", hook, resp.StatusCode)
				}
				return nil
			})

			resp, err := http.Post(hook, "application/json", strings.NewReader(`{"order": 42}`))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("POST answered %d, want 200 (the event was given up by policy, not to be resent)", resp.StatusCode)
			}
			if n := sensor.requests.Load(); n != 1 {
				t.Errorf("sensor asked %d times, want once (a 400 is not retried)", n)
			}
			letters := dls.Received()
			if !withSink {
				if len(letters) != 0 {
					t.Errorf("dead-letter sink got %d events, want none (not configured)", len(letters))
				}
				return
			}
			// Answered only after the sink took it: it is there already.
			// The webhook's event holds the request's header and body.
			if len(letters) != 1 || !strings.Contains(string(letters[0].Data()), `"order"`) || fmt.Sprint(letters[0].Extensions()[dispatch.ExtensionErrorCode]) != "400" {
				t.Errorf("dead-letter sink holds %v, want the event, with %s 400", letters, dispatch.ExtensionErrorCode)
			}
		})
	}
}

func TestStrayNames(t *testing.T) {
	gw := &v1alpha1.Gateway{Spec: v1alpha1.GatewaySpec{Watchers: &v1alpha1.NotificationWatchers{
		Sensors: []v1alpha1.SensorNotificationWatcher{{Name: "every-sensor"}, {Name: "audit"}}}}}
	var urls sensorURLs = map[string]string{}
	for _, f := range []string{"every-sensr=http://127.0.0.1:9300/", "audit=http://127.0.0.1:9301/", "http://127.0.0.1:9302/", "zz-extra=http://127.0.0.1:9303/"} {
		if err := urls.Set(f); err != nil {
			t.Fatal(err)
		}
	}
	stray, watchers := strayNames(gw, urls)
	if !slices.Equal(stray, []string{"every-sensr", "zz-extra"}) {
		t.Errorf("stray names %v, want the misspelt and the extra named one, not the watcher's nor the bare URL's", stray)
	}
	if !slices.Equal(watchers, []string{"every-sensor", "audit"}) {
		t.Errorf("watchers %v", watchers)
	}
}
