package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
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
		if !subjectMatches(s.cfg.Subject, msg.Subject()) {
			// The consumer's filter was changed under this connection by another client:
			// the message is another source's, not an event of this one.
			_ = msg.Nak()
			return fmt.Errorf("nats.jetStream.consumer: durable consumer %q on stream %q delivered a message on %q, outside this source's subject %q: "+
				"another client changed its filter subject; the message is given back", js.Consumer, js.Stream, msg.Subject(), s.cfg.Subject)
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

// consumer creates the source's durable consumer, or updates an existing one to the
// source's config. Sources that name one consumer share its messages, so they must agree on
// what it delivers: one whose filter subject or deliver policy differ from the source's is
// refused (see sharedConflict), not updated, since updating it would hand the other sources'
// messages to this one as its own, and theirs to nobody. What may differ, and is set from
// the source connecting last, is how it is delivered: ackWait, maxAckPending.
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

	// The lock keeps the sources of this process from both finding the consumer missing,
	// or as they want it, and then writing it one after the other. Against other processes
	// a missing consumer is created with the create action, which fails when it exists by
	// then with another config; an update can still race with another client's write
	// between the look-up and itself, which the session's subject check then catches.
	unlock, err := s.gw.consumerLocks.lock(ctx, js.Stream+"/"+js.Consumer)
	if err != nil {
		return nil, fmt.Errorf("nats.jetStream.consumer: wait for the other sources of durable consumer %q on stream %q: %w", js.Consumer, js.Stream, err)
	}
	defer unlock()
	cfg := s.consumerConfig()
	for attempt := 1; ; attempt++ {
		const attempts = 3 // a consumer created or deleted by others between two calls
		existing, err := stream.Consumer(ctx, js.Consumer)
		var consumer jetstream.Consumer
		switch {
		case errors.Is(err, jetstream.ErrConsumerNotFound):
			consumer, err = stream.CreateConsumer(ctx, cfg)
			if errors.Is(err, jetstream.ErrConsumerExists) && attempt < attempts {
				continue // created meanwhile by another client: check it
			}
		case errors.Is(err, jetstream.ErrNotPullConsumer):
			return nil, fmt.Errorf("nats.jetStream.consumer: durable consumer %q on stream %q is a push consumer (it has a deliver subject); the gateway reads through a pull consumer: name another consumer",
				js.Consumer, js.Stream)
		case err != nil:
			return nil, fmt.Errorf("nats.jetStream.consumer: look up durable consumer %q on stream %q: %w", js.Consumer, js.Stream, err)
		default:
			if err := s.sharedConflict(existing.CachedInfo().Config); err != nil {
				return nil, err
			}
			consumer, err = stream.UpdateConsumer(ctx, cfg)
			if errors.Is(err, jetstream.ErrConsumerDoesNotExist) && attempt < attempts {
				continue // deleted meanwhile: create it
			}
		}
		if err != nil {
			return nil, fmt.Errorf("nats.jetStream.consumer: create or update durable consumer %q on stream %q (filter subject %q): %w",
				js.Consumer, js.Stream, s.cfg.Subject, err)
		}
		return consumer, nil
	}
}

// sharedConflict is why the existing consumer cur may not be updated to the source's
// config, or nil: its filter subject or its deliver policy differ. The filter is what the
// consumer's sources share; changing it would change what the others receive (the source
// would get their messages as its own, and its own would reach nobody). The deliver policy
// cannot be changed on an existing consumer, which the server would refuse less clearly.
func (s *source) sharedConflict(cur jetstream.ConsumerConfig) error {
	js := s.cfg.JetStream
	want := s.consumerConfig()
	var problems []string
	if filter := filterSubjects(cur); !slices.Equal(filter, []string{s.cfg.Subject}) {
		problems = append(problems, fmt.Sprintf("its filter subject is %s, this source's subject is %q", describeFilter(filter), s.cfg.Subject))
	}
	if cur.DeliverPolicy != want.DeliverPolicy {
		problems = append(problems, fmt.Sprintf("its deliver policy is %s, this source's deliverPolicy is %s (a consumer's deliver policy cannot be changed)", cur.DeliverPolicy, want.DeliverPolicy))
	}
	if len(problems) == 0 {
		return nil
	}
	return fmt.Errorf("nats.jetStream.consumer: durable consumer %q on stream %q is in use with another config: %s; "+
		"sources that share a consumer share its messages, so it is left as it is: "+
		"give this source a consumer of its own, or the same subject and deliverPolicy as the consumer's",
		js.Consumer, js.Stream, strings.Join(problems, "; "))
}

// filterSubjects is the filter of a consumer's config, FilterSubject or FilterSubjects.
func filterSubjects(c jetstream.ConsumerConfig) []string {
	if c.FilterSubject != "" {
		return []string{c.FilterSubject}
	}
	return c.FilterSubjects
}

func describeFilter(filter []string) string {
	if len(filter) == 0 {
		return "none (every subject of the stream)"
	}
	quoted := make([]string, len(filter))
	for i, f := range filter {
		quoted[i] = strconv.Quote(f)
	}
	return strings.Join(quoted, ", ")
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

// subjectMatches reports whether subject is one of pattern's, whose wildcards are NATS's:
// '*' stands for one token, a last '>' for one or more.
func subjectMatches(pattern, subject string) bool {
	pt, st := strings.Split(pattern, "."), strings.Split(subject, ".")
	for i, p := range pt {
		switch {
		case p == ">" && i == len(pt)-1:
			return len(st) > i
		case i >= len(st):
			return false
		case p != "*" && p != st[i]:
			return false
		}
	}
	return len(pt) == len(st)
}

// keyedLocks are mutexes by name (here stream/consumer), made on demand and dropped when
// unused.
type keyedLocks struct {
	mu    sync.Mutex
	locks map[string]*keyedLock
}

type keyedLock struct {
	held  chan struct{} // one slot, full while locked
	users int           // holding or waiting; guarded by keyedLocks.mu
}

func newKeyedLocks() *keyedLocks { return &keyedLocks{locks: make(map[string]*keyedLock)} }

// lock waits until it holds key's lock, or ctx ends (an error), and returns its unlock.
func (k *keyedLocks) lock(ctx context.Context, key string) (unlock func(), err error) {
	k.mu.Lock()
	l := k.locks[key]
	if l == nil {
		l = &keyedLock{held: make(chan struct{}, 1)}
		k.locks[key] = l
	}
	l.users++
	k.mu.Unlock()
	done := func() {
		k.mu.Lock()
		if l.users--; l.users == 0 {
			delete(k.locks, key)
		}
		k.mu.Unlock()
	}
	select {
	case l.held <- struct{}{}:
		return func() { <-l.held; done() }, nil
	case <-ctx.Done():
		done()
		return nil, ctx.Err()
	}
}
