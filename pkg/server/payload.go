package server

import (
	"encoding/json"
	"fmt"
)

// MessageBody is how a broker message's body goes into an event payload: the JSON itself
// when the source asks for jsonBody and the body is JSON, the bytes otherwise, which JSON
// carries as base64 so that binary bodies arrive intact. A jsonBody source that receives a
// body that is not JSON still delivers it, as bytes, rather than dropping it.
func MessageBody(body []byte, jsonBody bool) any {
	if jsonBody && json.Valid(body) {
		return json.RawMessage(body)
	}
	return body
}

// JSONEvent is an event whose payload is v in JSON.
func JSONEvent(v any) (Event, error) {
	payload, err := json.Marshal(v)
	if err != nil {
		return Event{}, fmt.Errorf("encode event payload: %w", err)
	}
	return Event{Payload: payload, ContentType: "application/json"}, nil
}
