// Package cloudevent turns the events gateway servers stream into CloudEvents (spec 1.0),
// the form in which the gateway-client hands them to sensors.
package cloudevent

import (
	"crypto/rand"
	"encoding/json"
	"strings"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"

	"github.com/eventgate/eventgate/protos/gateways"
)

// Gateway names the gateway an event came through: its name is the CloudEvent's source,
// its type the CloudEvent's type.
type Gateway struct {
	Name string
	Type string
}

// From converts one gateway event. v0.10 gateway servers send only a name and a payload;
// everything else is derived: a fresh id, the receive time, and a content type guessed from
// the payload (JSON when it parses as JSON).
func From(gw Gateway, ev *gateways.Event, received time.Time) (cloudevents.Event, error) {
	ce := cloudevents.NewEvent(cloudevents.VersionV1)
	id := ev.GetId()
	if id == "" {
		id = rand.Text()
	}
	ce.SetID(id)
	ce.SetSource(gw.Name)
	ce.SetType(gw.Type)
	ce.SetSubject(ev.GetName())
	when := received
	if ev.GetTime() != nil {
		when = ev.GetTime().AsTime()
	}
	ce.SetTime(when)
	for key, value := range ev.GetMetadata() {
		if name := extensionName(key); name != "" {
			ce.SetExtension(name, value)
		}
	}
	contentType := ev.GetContentType()
	if contentType == "" {
		contentType = sniffContentType(ev.GetPayload())
	}
	// Data as bytes, as they came: SetData with []byte does not re-encode.
	if err := ce.SetData(contentType, ev.GetPayload()); err != nil {
		return cloudevents.Event{}, err
	}
	if err := ce.Validate(); err != nil {
		return cloudevents.Event{}, err
	}
	return ce, nil
}

func sniffContentType(payload []byte) string {
	if len(payload) > 0 && json.Valid(payload) {
		return cloudevents.ApplicationJSON
	}
	return "application/octet-stream"
}

// extensionName maps a metadata key to a CloudEvents attribute name, which may hold only
// lower-case letters and digits; keys that leave nothing, or would shadow a core attribute,
// are dropped.
func extensionName(key string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(key) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	name := b.String()
	switch name {
	case "", "id", "source", "specversion", "type", "subject", "time", "datacontenttype", "dataschema", "data", "data_base64":
		return ""
	}
	return name
}
