package sensorsink_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/client"
	cecontext "github.com/cloudevents/sdk-go/v2/context"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
)

// httpSender is a CloudEvents HTTP client as the gateway-client builds it: binary mode
// unless structured is asked for.
func httpSender(t *testing.T, url string, structured bool) client.Client {
	t.Helper()
	p, err := cehttp.New(cehttp.WithTarget(url))
	if err != nil {
		t.Fatal(err)
	}
	mode := client.WithForceBinary()
	if structured {
		mode = client.WithForceStructured()
	}
	c, err := client.New(p, mode)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func newEvent(id string) event.Event {
	e := event.New()
	e.SetID(id)
	e.SetSource("calendar-gateway")
	e.SetType("calendar")
	e.SetSubject("every-two-seconds")
	e.SetTime(time.Date(2026, 5, 1, 10, 0, 0, 123e6, time.UTC))
	if err := e.SetData("application/json", map[string]any{"n": 1}); err != nil {
		panic(err)
	}
	return e
}

// control calls one of the sink's control endpoints and returns the status and body.
func control(t *testing.T, method, url, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// cecontextWithRetries makes an sdk-go sender retry quickly and for long enough that only
// the test's own deadline stops it.
func cecontextWithRetries(ctx context.Context) context.Context {
	return cecontext.WithRetriesConstantBackoff(ctx, 10*time.Millisecond, 1000)
}
