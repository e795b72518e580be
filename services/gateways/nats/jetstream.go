package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventgate/eventgate/pkg/server"
)

const (
	// pullBatch is the most messages pulled ahead of emit. They wait in the library, where
	// no progress ack reaches them, so it stays small: when emit is held back for longer
	// than ackWait (a full window), at most these expire while waiting and come twice.
	pullBatch = 64
	// releaseWait bounds how long a closing connection waits for the messages it had pulled
	// (to give them back) and for its last acks to reach the server.
	releaseWait = 2 * time.Second
)

// Event metadata (CloudEvent extensions natsstream, natssequence, natsnumdelivered) of a
// JetStream event, the same as the payload's jetStream block.
const (
	metaStream       = "natsStream"
	metaSequence     = "natsSequence"
	metaNumDelivered = "natsNumDelivered"
)

// jetStreamInfo is the jetStream block of a JetStream event's payload:
//
//	"jetStream": {"stream": "ORDERS", "sequence": 42, "numDelivered": 2}
//
// sequence is the message's sequence in its stream; numDelivered counts its deliveries to
// the consumer, so above 1 it is a redelivery (the event's id, STREAM/sequence, stays the
// same, and a sensor can drop what it already has).
type jetStreamInfo struct {
	Stream       string `json:"stream"`
	Sequence     uint64 `json:"sequence"`
	NumDelivered uint64 `json:"numDelivered"`
}

// jetStreamSession is one connection consuming through the source's durable pull consumer,
// at least once: a message is acknowledged only once its event's fate is delivered or
// dropped (on a v0.10 client's StartEventSource call, that is when it is on the stream),
// given back (a negative ack) on retry or when the call ends first, and redelivered by the
// server after ackWait when the gateway vanishes. It returns when the connection is lost
// (an error), the stream is gone (emit's error) or ctx ends. Messages redelivered may come
// out of their stream order.
func (s *source) jetStreamSession(ctx context.Context, connected func(), emit server.Emit) error {
	log := server.LoggerFrom(ctx)
	js := s.cfg.JetStream
	nc, err := s.connect(ctx)
	if err != nil {
		return err
	}
	defer nc.Close()
	consumer, err := s.consumer(ctx, nc)
	if err != nil {
		return err
	}
	msgs, err := consumer.Messages(jetstream.PullMaxMessages(pullBatch))
	if err != nil {
		return fmt.Errorf("consume with %q: %w", js.Consumer, err)
	}
	acks := newAcks(log, s.cfg.Backoff, s.ackWait())
	defer func() {
		giveBack(msgs)
		acks.release()
		if nc.IsConnected() {
			_ = nc.FlushTimeout(releaseWait) // the acks just sent, before Close
		}
	}()
	log.Info("consuming", "server", nc.ConnectedUrlRedacted(), "stream", js.Stream, "consumer", js.Consumer, "subject", s.cfg.Subject)
	connected()

	for {
		msg, err := msgs.Next(jetstream.NextContext(ctx))
		switch {
		case err == nil:
		case ctx.Err() != nil:
			return nil
		default:
			if cause := nc.LastError(); cause != nil && !errors.Is(err, cause) {
				err = fmt.Errorf("%w (%w)", err, cause)
			}
			return fmt.Errorf("consuming from JetStream stream %q lost: %w", js.Stream, err)
		}
		meta, err := msg.Metadata()
		if err != nil {
			return fmt.Errorf("JetStream message without metadata: %w", err)
		}
		ev, err := s.jetStreamEvent(msg, meta)
		if err != nil {
			return err
		}
		held, onFate := acks.track(msg, meta.NumDelivered)
		ev.OnFate = onFate
		if err := emit(ctx, ev); err != nil {
			acks.refused(held)
			return err
		}
	}
}

// consumer creates the source's durable consumer, or updates it to the source's config.
func (s *source) consumer(ctx context.Context, nc *nats.Conn) (jetstream.Consumer, error) {
	ctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	js := s.cfg.JetStream
	api, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("JetStream: %w", err)
	}
	stream, err := api.Stream(ctx, js.Stream)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		return nil, fmt.Errorf("nats.jetStream.stream: the server has no stream %q: create it first (the gateway does not create streams)", js.Stream)
	case errors.Is(err, jetstream.ErrJetStreamNotEnabled), errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount):
		return nil, fmt.Errorf("nats.jetStream: %w", err)
	case err != nil:
		return nil, fmt.Errorf("nats.jetStream.stream: look up stream %q: %w", js.Stream, err)
	}
	consumer, err := stream.CreateOrUpdateConsumer(ctx, s.consumerConfig())
	if err != nil {
		return nil, fmt.Errorf("nats.jetStream.consumer: create or update durable consumer %q on stream %q (filter subject %q): %w",
			js.Consumer, js.Stream, s.cfg.Subject, err)
	}
	return consumer, nil
}

// consumerConfig is the durable consumer the source reads through: pulled, each message
// acknowledged on its own, filtered by the source's subject.
func (s *source) consumerConfig() jetstream.ConsumerConfig {
	js := s.cfg.JetStream
	policy := jetstream.DeliverAllPolicy
	switch js.DeliverPolicy {
	case "new":
		policy = jetstream.DeliverNewPolicy
	case "last":
		policy = jetstream.DeliverLastPolicy
	}
	return jetstream.ConsumerConfig{
		Durable:       js.Consumer,
		Description:   "eventgate " + gatewayType + " gateway",
		DeliverPolicy: policy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       s.ackWait(),
		MaxAckPending: js.MaxAckPending,
		FilterSubject: s.cfg.Subject,
	}
}

func (s *source) ackWait() time.Duration {
	if d := time.Duration(s.cfg.JetStream.AckWait); d > 0 {
		return d
	}
	return defaultAckWait
}

// jetStreamEvent is msg's event: the payload of core NATS plus the jetStream block, the
// same in the metadata, the stored time, and an id that a redelivery keeps.
func (s *source) jetStreamEvent(msg jetstream.Msg, meta *jetstream.MsgMetadata) (server.Event, error) {
	info := &jetStreamInfo{Stream: meta.Stream, Sequence: meta.Sequence.Stream, NumDelivered: meta.NumDelivered}
	ev, err := server.JSONEvent(payload{
		Subject: msg.Subject(), Header: msg.Headers(), Body: server.MessageBody(msg.Data(), s.cfg.JSONBody),
		JetStream: info,
	})
	if err != nil {
		return ev, err
	}
	ev.ID = meta.Stream + "/" + strconv.FormatUint(meta.Sequence.Stream, 10)
	ev.Time = meta.Timestamp
	ev.Metadata = map[string]string{
		metaStream:       meta.Stream,
		metaSequence:     strconv.FormatUint(meta.Sequence.Stream, 10),
		metaNumDelivered: strconv.FormatUint(meta.NumDelivered, 10),
	}
	ev.Metadata = traceContext(ev.Metadata, msg.Headers())
	return ev, nil
}

// giveBack stops pulling and gives back the messages pulled and not yet emitted, so that
// the server redelivers them at once rather than after ackWait.
func giveBack(msgs jetstream.MessagesContext) {
	msgs.Drain()
	deadline := time.Now().Add(releaseWait)
	for {
		msg, err := msgs.Next(jetstream.NextMaxWait(max(time.Until(deadline), time.Millisecond)))
		if err != nil {
			return
		}
		_ = msg.Nak()
	}
}
