package sensorsink

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/eventgate/eventgate/pkg/cloudevent"
)

// Format is how a Sink prints the events it accepts, one line each.
type Format string

const (
	// FormatPretty is for people: time, source, type, subject, id and the data, compacted
	// and truncated to MaxPrettyData bytes.
	FormatPretty Format = "pretty"
	// FormatJSON is for programs: the whole event in the CloudEvents JSON format.
	FormatJSON Format = "json"
)

// ParseFormat reads a format name; case and surrounding space are ignored.
func ParseFormat(s string) (Format, error) {
	switch f := Format(strings.ToLower(strings.TrimSpace(s))); f {
	case FormatPretty, FormatJSON:
		return f, nil
	}
	return "", fmt.Errorf("%q is not pretty or json", s)
}

// MaxPrettyData bounds the data shown on a pretty line, so that one large payload does
// not flood a terminal; the line then says how large the data was.
const MaxPrettyData = 200

// prettyTime has fixed width so that the columns of consecutive lines line up.
const prettyTime = "2006-01-02T15:04:05.000Z07:00"

type printer struct {
	mu     sync.Mutex
	w      io.Writer
	format Format
}

func (p *printer) print(e event.Event) error {
	line, err := FormatEvent(p.format, e)
	if err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	_, err = p.w.Write(append(line, '\n'))
	return err
}

// FormatEvent renders e as one line in format f, without the newline.
func FormatEvent(f Format, e event.Event) ([]byte, error) {
	switch f {
	case FormatJSON:
		jsonReady(&e)
		raw, err := json.Marshal(e)
		if err != nil {
			return nil, fmt.Errorf("encode event %q: %w", e.ID(), err)
		}
		// JSON data is embedded as sent, newlines and all; one event must stay one line.
		var line bytes.Buffer
		if err := json.Compact(&line, raw); err != nil {
			return nil, fmt.Errorf("encode event %q: %w", e.ID(), err)
		}
		return line.Bytes(), nil
	case FormatPretty, "":
		return []byte(prettyLine(e)), nil
	default:
		return nil, fmt.Errorf("unknown output format %q", f)
	}
}

func prettyLine(e event.Event) string {
	var b strings.Builder
	if t := e.Time(); t.IsZero() {
		b.WriteString("-")
	} else {
		b.WriteString(t.Format(prettyTime))
	}
	for _, kv := range [][2]string{
		{"source", e.Source()}, {"type", e.Type()}, {"subject", e.Subject()}, {"id", e.ID()},
	} {
		fmt.Fprintf(&b, " %s=%s", kv[0], quoteIfNeeded(kv[1]))
	}
	if len(e.Data()) > 0 {
		b.WriteString(" data=")
		b.WriteString(prettyData(e.DataContentType(), e.Data()))
	}
	return b.String()
}

// quoteIfNeeded leaves plain tokens bare and quotes the rest, so that every key=value
// pair stays one space-free word.
func quoteIfNeeded(s string) string {
	if s == "" || strings.ContainsFunc(s, func(r rune) bool {
		return r == '"' || r == '=' || unicode.IsSpace(r) || !unicode.IsPrint(r)
	}) {
		return strconv.Quote(s)
	}
	return s
}

// prettyData shows JSON compacted, text quoted and anything else as its size, cut to
// MaxPrettyData bytes on a rune boundary.
func prettyData(contentType string, data []byte) string {
	var shown string
	var compact bytes.Buffer
	switch {
	case (cloudevent.IsJSON(contentType) || contentType == "") && json.Compact(&compact, data) == nil:
		shown = compact.String()
	case utf8.Valid(data):
		shown = strconv.Quote(string(data))
	default:
		if contentType == "" {
			contentType = "binary"
		}
		return fmt.Sprintf("<%d bytes %s>", len(data), contentType)
	}
	if len(shown) <= MaxPrettyData {
		return shown
	}
	cut := MaxPrettyData
	for cut > 0 && !utf8.RuneStart(shown[cut]) {
		cut--
	}
	return fmt.Sprintf("%s...(%d bytes)", shown[:cut], len(data))
}

// jsonReady marks data for base64 where sdk-go would otherwise write it into the JSON
// format verbatim and break it: JSON-typed (or untyped) data that is not valid JSON, and
// bytes that are not UTF-8 text. Events received in binary mode arrive unmarked.
func jsonReady(e *event.Event) {
	if e.DataBase64 || len(e.DataEncoded) == 0 {
		return
	}
	// sdk-go's own reading of the content type, which decides how it writes the data.
	mediaType, _, _ := strings.Cut(e.DataContentType(), ";")
	switch strings.ToLower(strings.TrimSpace(mediaType)) {
	case "", event.ApplicationJSON, event.TextJSON, event.ApplicationCloudEventsJSON, event.ApplicationCloudEventsBatchJSON:
		e.DataBase64 = !json.Valid(e.DataEncoded)
	default:
		e.DataBase64 = !utf8.Valid(e.DataEncoded)
	}
}
