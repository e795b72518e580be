package sensorsink_test

import (
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/protocol"

	"github.com/eventgate/eventgate/pkg/sensorsink"
	"github.com/eventgate/eventgate/pkg/testenv"
)

func TestFormatEvent(t *testing.T) {
	at := time.Date(2026, 5, 1, 10, 0, 0, 123456789, time.UTC)
	build := func(mod func(e *event.Event)) event.Event {
		e := event.New()
		e.SetID("42")
		e.SetSource("calendar-gateway")
		e.SetType("calendar")
		e.SetSubject("every-two-seconds")
		e.SetTime(at)
		mod(&e)
		return e
	}
	// data sets the data as a binary-mode delivery leaves it: bytes, not marked base64.
	data := func(contentType string, d any) func(e *event.Event) {
		return func(e *event.Event) {
			if err := e.SetData(contentType, d); err != nil {
				t.Fatal(err)
			}
			e.DataBase64 = false
		}
	}
	long := strings.Repeat("x", 300)
	for _, tc := range []struct {
		name   string
		event  event.Event
		pretty string
		json   string
	}{
		{
			name:   "JSON data is compacted",
			event:  build(data("application/json", []byte("{\n  \"eventTime\": \"2026-05-01T10:00:00Z\",\n  \"userPayload\": {\"a\": [1, 2]}\n}"))),
			pretty: `2026-05-01T10:00:00.123Z source=calendar-gateway type=calendar subject=every-two-seconds id=42 data={"eventTime":"2026-05-01T10:00:00Z","userPayload":{"a":[1,2]}}`,
			json:   `{"specversion":"1.0","id":"42","source":"calendar-gateway","type":"calendar","subject":"every-two-seconds","datacontenttype":"application/json","time":"2026-05-01T10:00:00.123456789Z","data":{"eventTime":"2026-05-01T10:00:00Z","userPayload":{"a":[1,2]}}}`,
		},
		{
			name:   "text is quoted, so newlines stay on the line",
			event:  build(data("text/plain", "two\nlines")),
			pretty: `2026-05-01T10:00:00.123Z source=calendar-gateway type=calendar subject=every-two-seconds id=42 data="two\nlines"`,
			json:   `{"specversion":"1.0","id":"42","source":"calendar-gateway","type":"calendar","subject":"every-two-seconds","datacontenttype":"text/plain","time":"2026-05-01T10:00:00.123456789Z","data":"two\nlines"}`,
		},
		{
			name:   "binary data shows its size",
			event:  build(data("application/octet-stream", []byte{0, 0xff, 0xfe})),
			pretty: `2026-05-01T10:00:00.123Z source=calendar-gateway type=calendar subject=every-two-seconds id=42 data=<3 bytes application/octet-stream>`,
			json:   `{"specversion":"1.0","id":"42","source":"calendar-gateway","type":"calendar","subject":"every-two-seconds","datacontenttype":"application/octet-stream","time":"2026-05-01T10:00:00.123456789Z","data_base64":"AP/+"}`,
		},
		{
			name:   "long data is cut and says how long it was",
			event:  build(data("application/json", map[string]string{"k": long})),
			pretty: `2026-05-01T10:00:00.123Z source=calendar-gateway type=calendar subject=every-two-seconds id=42 data={"k":"` + long[:sensorsink.MaxPrettyData-6] + `...(308 bytes)`,
			json:   `{"specversion":"1.0","id":"42","source":"calendar-gateway","type":"calendar","subject":"every-two-seconds","datacontenttype":"application/json","time":"2026-05-01T10:00:00.123456789Z","data":{"k":"` + long + `"}}`,
		},
		{
			name:   "untyped text is quoted, and base64 in JSON",
			event:  build(data("", []byte("hello"))),
			pretty: `2026-05-01T10:00:00.123Z source=calendar-gateway type=calendar subject=every-two-seconds id=42 data="hello"`,
			json:   `{"specversion":"1.0","id":"42","source":"calendar-gateway","type":"calendar","subject":"every-two-seconds","time":"2026-05-01T10:00:00.123456789Z","data_base64":"aGVsbG8="}`,
		},
		{
			name:   "JSON-typed data that is not JSON",
			event:  build(data("application/json; charset=utf-8", []byte("{oops"))),
			pretty: `2026-05-01T10:00:00.123Z source=calendar-gateway type=calendar subject=every-two-seconds id=42 data="{oops"`,
			json:   `{"specversion":"1.0","id":"42","source":"calendar-gateway","type":"calendar","subject":"every-two-seconds","datacontenttype":"application/json; charset=utf-8","time":"2026-05-01T10:00:00.123456789Z","data_base64":"e29vcHM="}`,
		},
		{
			name: "no time, no subject, no data; spaces and extensions",
			event: build(func(e *event.Event) {
				e.SetTime(time.Time{})
				e.SetSubject("")
				e.SetType("a type")
				e.SetExtension("partition", "p1")
			}),
			pretty: `- source=calendar-gateway type="a type" subject="" id=42`,
			json:   `{"specversion":"1.0","id":"42","source":"calendar-gateway","type":"a type","partition":"p1"}`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, f := range []struct {
				format sensorsink.Format
				want   string
			}{{sensorsink.FormatPretty, tc.pretty}, {sensorsink.FormatJSON, tc.json}} {
				got, err := sensorsink.FormatEvent(f.format, tc.event)
				if err != nil {
					t.Fatal(err)
				}
				if string(got) != f.want {
					t.Errorf("%s:\n got %s\nwant %s", f.format, got, f.want)
				}
			}
		})
	}
}

func TestOutputPrintsOneLinePerAcceptedEvent(t *testing.T) {
	for _, format := range []sensorsink.Format{sensorsink.FormatPretty, sensorsink.FormatJSON} {
		t.Run(string(format), func(t *testing.T) {
			var out testenv.SyncBuffer
			sink := testenv.StartSensor(t, sensorsink.Endpoints{}, sensorsink.WithOutput(&out, format), sensorsink.WithFailFirst(1))
			sender := httpSender(t, sink.URL, false)
			var want strings.Builder
			for _, id := range []string{"refused", "a", "b"} {
				e := newEvent(id)
				if res := sender.Send(t.Context(), e); protocol.IsACK(res) != (id != "refused") {
					t.Fatalf("send %s: %v", id, res)
				}
				if id == "refused" {
					continue
				}
				line, err := sensorsink.FormatEvent(format, e)
				if err != nil {
					t.Fatal(err)
				}
				want.Write(line)
				want.WriteString("\n")
			}
			// Lines are written before the sender's 200, so they are all there now.
			if got := out.String(); got != want.String() {
				t.Errorf("output:\n%s\nwant:\n%s", got, want.String())
			}
		})
	}
}

func TestParseFormatAndMode(t *testing.T) {
	for _, tc := range []struct {
		in      string
		parse   func(string) (string, error)
		want    string
		wantErr string
	}{
		{in: "pretty", parse: parseFormat, want: "pretty"},
		{in: " JSON\n", parse: parseFormat, want: "json"},
		{in: "yaml", parse: parseFormat, wantErr: `"yaml" is not pretty or json`},
		{in: "stall", parse: parseMode, want: "stall"},
		{in: "FAIL", parse: parseMode, want: "fail"},
		{in: "", parse: parseMode, wantErr: `"" is not ok, fail or stall`},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := tc.parse(tc.in)
			if got != tc.want || (err == nil) != (tc.wantErr == "") || (err != nil && err.Error() != tc.wantErr) {
				t.Errorf("got %q, %v; want %q, %q", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func parseFormat(s string) (string, error) {
	f, err := sensorsink.ParseFormat(s)
	return string(f), err
}
func parseMode(s string) (string, error) { m, err := sensorsink.ParseMode(s); return string(m), err }
