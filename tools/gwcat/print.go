package main

import (
	"encoding/json"
	"io"
	"time"
	"unicode/utf8"

	"github.com/eventgate/eventgate/protos/gateways"
)

// eventLine is one event as gwcat prints it: one JSON object per line. The payload goes in
// exactly one of three fields, chosen by its bytes alone (not every gateway sets a content
// type, and the one it sets is printed too):
//
//	payload        valid JSON: embedded as JSON, compacted onto the line
//	payloadText    otherwise valid UTF-8, the empty payload included: a JSON string
//	payloadBase64  anything else: standard base64 with padding
//
// id, time, contentType and metadata are left out when empty: a v0.10 gateway sends only
// name and payload.
type eventLine struct {
	Name          string            `json:"name"`
	ID            string            `json:"id,omitempty"`
	Time          string            `json:"time,omitempty"`
	ContentType   string            `json:"contentType,omitempty"`
	Metadata      map[string]string `json:"metadata,omitempty"`
	Payload       json.RawMessage   `json:"payload,omitempty"`
	PayloadText   *string           `json:"payloadText,omitempty"`
	PayloadBase64 []byte            `json:"payloadBase64,omitempty"`
}

// printEvent writes ev to w as one line.
func printEvent(w io.Writer, ev *gateways.Event) error {
	line := eventLine{
		Name:        ev.GetName(),
		ID:          ev.GetId(),
		ContentType: ev.GetContentType(),
		Metadata:    ev.GetMetadata(),
	}
	if ev.GetTime() != nil {
		line.Time = ev.GetTime().AsTime().Format(time.RFC3339Nano)
	}
	switch p := ev.GetPayload(); {
	case json.Valid(p):
		line.Payload = p
	case utf8.Valid(p):
		text := string(p)
		line.PayloadText = &text
	default:
		line.PayloadBase64 = p // encoding/json writes []byte as standard base64
	}
	enc := json.NewEncoder(w)
	// Payloads are read by people and jq, not embedded in HTML: keep <, > and & as they are.
	enc.SetEscapeHTML(false)
	return enc.Encode(line)
}
