package sensorsink_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/protocol"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/cloudevents/sdk-go/v2/types"

	"github.com/eventgate/eventgate/pkg/sensorsink"
	"github.com/eventgate/eventgate/pkg/testenv"
)

// statusOf is the HTTP status a sender got, or 0 if it got none.
func statusOf(res protocol.Result) int {
	var httpResult *cehttp.Result
	if protocol.ResultAs(res, &httpResult) {
		return httpResult.StatusCode
	}
	return 0
}

func TestHTTPRecordsEveryAttribute(t *testing.T) {
	sink := testenv.StartSensor(t, sensorsink.Endpoints{})
	payloads := []struct {
		name        string
		contentType string
		data        []byte
	}{
		{"json", "application/json", []byte(`{"eventTime":"2026-05-01T10:00:00Z","userPayload":{"a":[1,2]}}`)},
		{"text", "text/plain; charset=utf-8", []byte("héllo\nworld")},
		{"binary", "application/octet-stream", []byte{0, 1, 2, 0xfe, 0xff}},
	}
	for _, structured := range []bool{false, true} {
		for _, p := range payloads {
			name := fmt.Sprintf("binary-mode/%s", p.name)
			if structured {
				name = fmt.Sprintf("structured-mode/%s", p.name)
			}
			t.Run(name, func(t *testing.T) {
				sink.Reset()
				sent := event.New()
				sent.SetID("id-" + strings.ReplaceAll(name, "/", "-"))
				sent.SetSource("webhook-gateway")
				sent.SetType("webhook")
				sent.SetSubject("push")
				sent.SetTime(time.Date(2026, 5, 1, 10, 0, 0, 123456789, time.UTC))
				sent.SetDataSchema("https://example.com/schema")
				sent.SetExtension("partition", "p1")
				sent.SetExtension("attempt", 3)
				if err := sent.SetData(p.contentType, p.data); err != nil {
					t.Fatal(err)
				}

				res := httpSender(t, sink.URL, structured).Send(t.Context(), sent)
				if !protocol.IsACK(res) || statusOf(res) != http.StatusOK {
					t.Fatalf("send: %v (status %d), want 200", res, statusOf(res))
				}
				got := sink.Received()
				if len(got) != 1 {
					t.Fatalf("received %d events, want 1", len(got))
				}
				e := got[0]
				for _, c := range []struct{ field, got, want string }{
					{"specversion", e.SpecVersion(), "1.0"},
					{"id", e.ID(), sent.ID()},
					{"source", e.Source(), "webhook-gateway"},
					{"type", e.Type(), "webhook"},
					{"subject", e.Subject(), "push"},
					{"dataschema", e.DataSchema(), "https://example.com/schema"},
					{"datacontenttype", e.DataContentType(), p.contentType},
					{"time", e.Time().Format(time.RFC3339Nano), "2026-05-01T10:00:00.123456789Z"},
				} {
					if c.got != c.want {
						t.Errorf("%s = %q, want %q", c.field, c.got, c.want)
					}
				}
				if !bytes.Equal(e.Data(), p.data) {
					t.Errorf("data = %q, want %q", e.Data(), p.data)
				}
				// Binary mode carries extensions as header strings, so compare them as the
				// CloudEvents type system would.
				if v, err := types.ToString(e.Extensions()["partition"]); err != nil || v != "p1" {
					t.Errorf("extension partition = %v (%v), want p1", e.Extensions()["partition"], err)
				}
				if v, err := types.ToInteger(e.Extensions()["attempt"]); err != nil || v != 3 {
					t.Errorf("extension attempt = %v (%v), want 3", e.Extensions()["attempt"], err)
				}
				if len(e.Extensions()) != 2 {
					t.Errorf("extensions = %v, want partition and attempt only", e.Extensions())
				}
			})
		}
	}
}

func TestHTTPBatch(t *testing.T) {
	sink := testenv.StartSensor(t, sensorsink.Endpoints{})
	ctx := t.Context()
	req, err := cehttp.NewHTTPRequestFromEvents(ctx, sink.URL, []event.Event{newEvent("b1"), newEvent("b2")})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d, want 200", resp.StatusCode)
	}
	got := sink.Received()
	if len(got) != 2 || got[0].ID() != "b1" || got[1].ID() != "b2" {
		t.Fatalf("received %v, want b1 and b2", got)
	}
}

func TestHTTPRefusesWhatIsNotACloudEvent(t *testing.T) {
	sink := testenv.StartSensor(t, sensorsink.Endpoints{})
	for _, tc := range []struct {
		name    string
		path    string
		header  map[string]string
		body    string
		status  int
		message string
	}{
		{
			name:    "plain JSON",
			header:  map[string]string{"Content-Type": "application/json"},
			body:    `{"a":1}`,
			status:  http.StatusUnsupportedMediaType,
			message: `not a CloudEvent: no ce-specversion header, and content type "application/json" is not application/cloudevents+json`,
		},
		{
			name:    "binary mode without id",
			header:  map[string]string{"ce-specversion": "1.0", "ce-source": "s", "ce-type": "t"},
			status:  http.StatusBadRequest,
			message: "invalid event: id: MUST be a non-empty string\n",
		},
		{
			name:    "structured mode, broken JSON",
			header:  map[string]string{"Content-Type": "application/cloudevents+json"},
			body:    `{"specversion":"1.0",`,
			status:  http.StatusBadRequest,
			message: "decode event: ",
		},
		{
			name:    "mistyped control path",
			path:    "control/mdoe",
			header:  map[string]string{"ce-specversion": "1.0", "ce-id": "1", "ce-source": "s", "ce-type": "t"},
			status:  http.StatusNotFound,
			message: "404 page not found",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, sink.URL+tc.path, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body bytes.Buffer
			if _, err := body.ReadFrom(resp.Body); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.status || !strings.HasPrefix(body.String(), tc.message) {
				t.Errorf("got %d %q, want %d %q...", resp.StatusCode, body.String(), tc.status, tc.message)
			}
		})
	}
	if got := sink.Received(); len(got) != 0 {
		t.Errorf("received %v, want nothing", got)
	}
	if got := sink.Stats().Malformed; got != 3 {
		t.Errorf("malformed = %d, want 3", got)
	}
}

func TestHTTPRefusesOversizedDelivery(t *testing.T) {
	sink := testenv.StartSensor(t, sensorsink.Endpoints{})
	e := newEvent("big")
	if err := e.SetData("text/plain", strings.Repeat("x", sensorsink.MaxBodyBytes+1)); err != nil {
		t.Fatal(err)
	}
	res := httpSender(t, sink.URL, false).Send(t.Context(), e)
	if got := statusOf(res); got != http.StatusRequestEntityTooLarge {
		t.Fatalf("send: %v (status %d), want 413", res, got)
	}
	if got := sink.Stats(); got.Accepted != 0 || got.Malformed != 1 {
		t.Errorf("stats %+v, want 1 malformed, none accepted", got)
	}
}

func TestModeFailRefusesAndRetryAfterSwitchToOKIsRecordedOnce(t *testing.T) {
	sink := testenv.StartSensor(t, sensorsink.Endpoints{}, sensorsink.WithMode(sensorsink.ModeFail))
	sender := httpSender(t, sink.URL, false)

	t.Run("no retry: the sender sees 503, nothing is recorded", func(t *testing.T) {
		res := sender.Send(t.Context(), newEvent("once"))
		if protocol.IsACK(res) || statusOf(res) != http.StatusServiceUnavailable {
			t.Fatalf("send: %v (status %d), want NACK 503", res, statusOf(res))
		}
		if !strings.Contains(res.Error(), "sensor refuses events: mode fail") {
			t.Errorf("send error %q does not say why", res)
		}
		if got := sink.Received(); len(got) != 0 {
			t.Fatalf("received %v, want nothing", got)
		}
	})

	t.Run("retrying sender succeeds once the mode is ok", func(t *testing.T) {
		rejectedBefore := sink.Stats().Rejected
		ctx := cecontextWithRetries(t.Context())
		done := make(chan protocol.Result, 1)
		go func() { done <- sender.Send(ctx, newEvent("retried")) }()

		// Two refusals prove the sender is retrying against the failing sink.
		testenv.Eventually(t, 10*time.Second, 5*time.Millisecond, func() error {
			if got := sink.Stats().Rejected - rejectedBefore; got < 2 {
				return fmt.Errorf("%d refusals so far", got)
			}
			return nil
		})
		if status, body := control(t, http.MethodPut, sink.URL+"control/mode", "ok\n"); status != http.StatusOK || body != "ok\n" {
			t.Fatalf("PUT /control/mode: %d %q", status, body)
		}
		select {
		case res := <-done:
			if !protocol.IsACK(res) {
				t.Fatalf("send: %v, want ACK", res)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("sender still retrying 10s after the switch to ok")
		}
		// The sender stops at the first ACK, so exactly one copy can have been recorded.
		got := sink.Received()
		if len(got) != 1 || got[0].ID() != "retried" {
			t.Fatalf("received %v, want exactly one event retried", got)
		}
	})
}

func TestFailFirst(t *testing.T) {
	sink := testenv.StartSensor(t, sensorsink.Endpoints{}, sensorsink.WithFailFirst(2))
	sender := httpSender(t, sink.URL, false)
	for i, want := range []int{503, 503, 200, 200} {
		res := sender.Send(t.Context(), newEvent(fmt.Sprint(i)))
		if got := statusOf(res); got != want {
			t.Errorf("delivery %d: status %d (%v), want %d", i, got, res, want)
		}
	}
	if got := sink.Stats(); got.Rejected != 2 || got.Accepted != 2 {
		t.Errorf("stats %+v, want 2 rejected, 2 accepted", got)
	}
}

func TestModeStall(t *testing.T) {
	for _, tc := range []struct {
		name string
		// release ends the stall (nil: the sender's deadline does).
		release      func(t *testing.T, sink *testenv.Sensor)
		senderWait   time.Duration
		wantStatus   int // 0: the sender gave up, no answer
		wantRecorded int
		wantStats    sensorsink.Stats
	}{
		{
			name:       "held until the sender's deadline",
			senderWait: 300 * time.Millisecond,
			wantStats:  sensorsink.Stats{Abandoned: 1},
		},
		{
			name: "switch to ok accepts the held delivery",
			release: func(t *testing.T, sink *testenv.Sensor) {
				control(t, http.MethodPost, sink.URL+"control/mode?mode=ok", "")
			},
			senderWait:   time.Minute,
			wantStatus:   http.StatusOK,
			wantRecorded: 1,
			wantStats:    sensorsink.Stats{Accepted: 1},
		},
		{
			name: "switch to fail refuses it",
			release: func(_ *testing.T, sink *testenv.Sensor) {
				sink.SetMode(sensorsink.ModeFail)
			},
			senderWait: time.Minute,
			wantStatus: http.StatusServiceUnavailable,
			wantStats:  sensorsink.Stats{Rejected: 1},
		},
		{
			name: "stopping the sink refuses it and does not wait for the sender",
			release: func(t *testing.T, sink *testenv.Sensor) {
				if err := sink.Stop(); err != nil {
					t.Errorf("stop: %v", err)
				}
			},
			senderWait: time.Minute,
			wantStatus: http.StatusServiceUnavailable,
			wantStats:  sensorsink.Stats{Rejected: 1},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sink := testenv.StartSensor(t, sensorsink.Endpoints{}, sensorsink.WithMode(sensorsink.ModeStall))
			ctx, cancel := context.WithTimeout(t.Context(), tc.senderWait)
			defer cancel()
			done := make(chan protocol.Result, 1)
			go func() { done <- httpSender(t, sink.URL, false).Send(ctx, newEvent("stalled")) }()

			testenv.Eventually(t, 10*time.Second, 5*time.Millisecond, func() error {
				if held := sink.Stats().Held; held != 1 {
					return fmt.Errorf("%d deliveries held", held)
				}
				return nil
			})
			if tc.release != nil {
				tc.release(t, sink)
			}
			res := <-done
			if got := statusOf(res); got != tc.wantStatus {
				t.Errorf("send: %v (status %d), want status %d", res, got, tc.wantStatus)
			}
			if tc.wantStatus == 0 && !errors.Is(res, context.DeadlineExceeded) {
				t.Errorf("send: %v, want the sender's deadline", res)
			}
			testenv.Eventually(t, 10*time.Second, 5*time.Millisecond, func() error {
				if got := sink.Stats(); got != tc.wantStats {
					return fmt.Errorf("stats %+v, want %+v", got, tc.wantStats)
				}
				return nil
			})
			if got := sink.Received(); len(got) != tc.wantRecorded {
				t.Errorf("received %d events, want %d", len(got), tc.wantRecorded)
			}
		})
	}
}
