package dispatch

import (
	"net/http"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// safeHeaders makes the headers of a binary-mode request sendable whatever the event's
// attributes hold. An attribute value with a control character (a refusal's multi-line
// body in knativeerrordata, a broker header with a newline) cannot go into an HTTP header:
// net/http refuses the whole request, and as that is no answer, the event would be tried
// again for ever and hold its ordering key. Such bytes in ce-* values are percent-encoded,
// as the CloudEvents HTTP binding encodes them (a reader that decodes gets the value back;
// the Go SDK, which does not, shows %0A). Everything else is left as the SDK wrote it. A
// plain W3C tracestate with one is invalid, and is left out (ce-tracestate still has it).
func safeHeaders(h http.Header) {
	for k, vs := range h {
		ce := len(k) > 3 && strings.EqualFold(k[:3], "ce-")
		if !ce && k != "Tracestate" {
			continue
		}
		for i, v := range vs {
			// net/http's own test of what it refuses to send.
			if httpguts.ValidHeaderFieldValue(v) {
				continue
			}
			if !ce {
				delete(h, k)
				break
			}
			vs[i] = escapeControls(v)
		}
	}
}

// isControl reports whether b is a byte an HTTP header value cannot carry
// (httpguts.ValidHeaderFieldValue): a control character but for tab.
func isControl(b byte) bool { return b < ' ' && b != '\t' || b == 0x7f }

// escapeControls percent-encodes v's control characters.
func escapeControls(v string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(v) + 8)
	for i := 0; i < len(v); i++ {
		if c := v[i]; isControl(c) {
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&0xf])
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}
