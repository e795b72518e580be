package sensorsink

import (
	"context"
	"fmt"

	cenats "github.com/cloudevents/sdk-go/protocol/nats/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/nats-io/nats.go"
)

// HandleNATS takes one NATS message carrying a CloudEvent (sdk-go's NATS protocol sends
// structured mode). nats.go calls it for one subscription's messages in order, so a stall
// holds back the messages behind it, as a stuck sensor would. There is no sender waiting,
// so a refused event is dropped and a stall lasts until the mode changes or the sink
// closes.
func (s *Sink) HandleNATS(msg *nats.Msg) {
	e, err := binding.ToEvent(context.Background(), cenats.NewMessage(msg))
	if err == nil {
		err = e.Validate()
	}
	if err != nil {
		s.malformed("nats", fmt.Errorf("subject %s: %w", msg.Subject, err))
		return
	}
	switch v, reason := s.admit(context.Background()); v {
	case accept:
		s.record([]event.Event{*e}, "nats")
	default:
		s.log.Info("event dropped", "transport", "nats", "subject", msg.Subject, "eventID", e.ID(), "reason", reason)
	}
}
