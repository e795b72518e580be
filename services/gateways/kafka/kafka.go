package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/IBM/sarama"

	"github.com/eventgate/eventgate/pkg/config"
	"github.com/eventgate/eventgate/pkg/secret"
	"github.com/eventgate/eventgate/pkg/server"
)

// gatewayType names this gateway in logs, errors and CloudEvents.
const gatewayType = "kafka"

// gateway consumes a Kafka topic: one partition from the newest message on, or, with a
// consumer group, every partition from the group's committed offsets.
type gateway struct {
	// secrets resolves the sources' secret references.
	secrets secret.Store
}

func (gateway) Type() string { return gatewayType }

func (g gateway) Parse(_, data string) (server.Source, error) {
	cfg, err := config.Parse[Config](gatewayType, data)
	if err != nil {
		return nil, err
	}
	sc, err := cfg.saramaConfig()
	if err != nil {
		return nil, err
	}
	return &source{cfg: *cfg, sarama: sc, secrets: g.secrets}, nil
}

// payload is the event payload of one Kafka record, in JSON:
//
//	{"topic": "orders", "partition": 0, "offset": 42, "key": "order-7",
//	 "headers": {"trace-id": "abc"}, "timestamp": "2026-01-02T15:04:05.123Z", "body": ...}
//
// body is the record's value: the JSON itself when the source sets jsonBody and the value
// is JSON, otherwise the bytes in base64, so binary values arrive intact. key and header
// values are text; of a header key given twice, the last value is kept. The CloudEvent's
// time is the record's timestamp.
type payload struct {
	Topic     string            `json:"topic"`
	Partition int32             `json:"partition"`
	Offset    int64             `json:"offset"`
	Key       string            `json:"key,omitempty"`
	Headers   map[string]string `json:"headers,omitempty"`
	Timestamp time.Time         `json:"timestamp,omitzero"`
	Body      any               `json:"body"`
}

type source struct {
	cfg     Config
	sarama  *sarama.Config
	secrets secret.Store
}

// clientConfig is the client configuration of one connection: with a passwordSecret, the
// parsed one with the password read now, so that a secret created late is picked up by the
// next attempt and a rotated one by the next reconnect.
func (s *source) clientConfig(ctx context.Context) (*sarama.Config, error) {
	if s.cfg.SASL == nil || s.cfg.SASL.PasswordSecret == nil {
		return s.sarama, nil
	}
	password, err := secret.Value(ctx, s.secrets, "kafka.sasl.passwordSecret", "", s.cfg.SASL.PasswordSecret)
	if err != nil {
		return nil, err
	}
	sc := *s.sarama
	sc.Net.SASL.Password = password
	return &sc, nil
}

// Start consumes until ctx ends, reconnecting per the backoff whenever the brokers are lost.
func (s *source) Start(ctx context.Context, emit server.Emit) error {
	if s.cfg.ConsumerGroup != nil {
		return server.Reconnect(ctx, s.cfg.Backoff, s.groupSession(emit))
	}
	return server.Reconnect(ctx, s.cfg.Backoff, s.partitionSession(emit))
}

// send emits one record, whose fate goes to onFate (nil: nobody asks); the error is the
// stream's, and means the record was not handed over.
func (s *source) send(ctx context.Context, emit server.Emit, m *sarama.ConsumerMessage, onFate func(server.Fate)) error {
	p := payload{
		Topic: m.Topic, Partition: m.Partition, Offset: m.Offset, Key: string(m.Key),
		Timestamp: m.Timestamp, Body: server.MessageBody(m.Value, s.cfg.JSONBody),
	}
	if len(m.Headers) > 0 {
		p.Headers = make(map[string]string, len(m.Headers))
		for _, h := range m.Headers {
			p.Headers[string(h.Key)] = string(h.Value)
		}
	}
	ev, err := server.JSONEvent(p)
	if err != nil {
		return err
	}
	ev.Time = m.Timestamp
	// A partition is Kafka's unit of order: the client keeps it, and delivers different
	// partitions concurrently. A redelivered record keeps its ID, so a sensor can
	// de-duplicate on it.
	ev.OrderingKey = m.Topic + "/" + strconv.Itoa(int(m.Partition))
	ev.ID = ev.OrderingKey + "/" + strconv.FormatInt(m.Offset, 10)
	ev.Metadata = traceContext(m.Headers)
	ev.OnFate = onFate
	if err := emit(ctx, ev); err != nil {
		return fmt.Errorf("emit %s/%d@%d: %w", m.Topic, m.Partition, m.Offset, err)
	}
	return nil
}

// partitionSession consumes the configured partition. The first session starts at the
// newest message, as v0.10 did; later ones resume right after the last record handed
// over, so a broker restart loses nothing that the broker kept. That position lives in
// memory and nothing is committed: a restarted source (a new call, after a client or
// gateway crash) starts at the newest message again, so what was handed over and not yet
// delivered, and what was published while no source ran, is lost. Fates are not waited
// for; use a consumer group for acknowledged delivery.
func (s *source) partitionSession(emit server.Emit) server.Session {
	next := sarama.OffsetNewest
	partition, _ := s.cfg.partition() // validated in Parse
	return func(ctx context.Context, connected func()) error {
		log := server.LoggerFrom(ctx)
		client, err := s.connect(ctx)
		if err != nil {
			return err
		}
		defer client.Close()
		consumer, err := sarama.NewConsumerFromClient(client)
		if err != nil {
			return fmt.Errorf("consumer: %w", err)
		}
		defer consumer.Close()
		pc, err := consumer.ConsumePartition(s.cfg.Topic, partition, next)
		if errors.Is(err, sarama.ErrOffsetOutOfRange) {
			// The broker no longer has our position (it lost or expired its log): take all
			// it has rather than skipping what it got since.
			log.Warn("resume position is gone from the broker: consuming from the oldest message", "offset", next)
			pc, err = consumer.ConsumePartition(s.cfg.Topic, partition, sarama.OffsetOldest)
		}
		if err != nil {
			return fmt.Errorf("consume %s/%d: %w", s.cfg.Topic, partition, err)
		}
		defer pc.Close()
		connected()
		log.Info("consuming", "topic", s.cfg.Topic, "partition", partition, "offset", next)
		for {
			select {
			case m, ok := <-pc.Messages():
				if !ok {
					return errors.New("partition consumer closed")
				}
				if err := s.send(ctx, emit, m, nil); err != nil {
					return err
				}
				next = m.Offset + 1
			case err := <-pc.Errors():
				return fmt.Errorf("consume %s/%d: %w", s.cfg.Topic, partition, err)
			case <-ctx.Done():
				return nil
			}
		}
	}
}

// errorLogPeriod spaces the warnings of a consumer group that retries by itself.
const errorLogPeriod = 10 * time.Second

// groupSession consumes as a member of the consumer group. A record's offset is marked
// only once it and every record before it in its partition were acknowledged, delivered or
// dropped (see partitionAcks), and sarama commits marked offsets every second and when a
// session ends: a crash of the client or of the gateway never commits a record that was
// not acknowledged, so it comes again, with at most the last second's acknowledged ones
// (at-least-once). A record to be retried (or lost with its call) ends the session, and the
// group consumes again from the committed offsets, so it comes again on the same call. A
// partition the group has no committed offset for yet has the offset its claim starts at
// committed before any of its records is handed over (see ConsumeClaim), so that too is
// where it is consumed again from, not the newest offset of the moment.
// sarama rides out a short broker loss by itself; a longer one ends the group session,
// and Reconnect starts a new one.
func (s *source) groupSession(emit server.Emit) server.Session {
	return func(ctx context.Context, connected func()) error {
		log := server.LoggerFrom(ctx)
		client, err := s.connect(ctx)
		if err != nil {
			return err
		}
		defer client.Close()
		group, err := sarama.NewConsumerGroupFromClient(s.cfg.ConsumerGroup.GroupName, client)
		if err != nil {
			return fmt.Errorf("consumer group %q: %w", s.cfg.ConsumerGroup.GroupName, err)
		}
		drained := make(chan struct{})
		go func() {
			defer close(drained)
			// sarama retries a lost broker every 250ms by itself, reporting each attempt:
			// one warning per quiet period says it, the rest go to debug.
			var warned time.Time
			for err := range group.Errors() {
				level := slog.LevelDebug
				if time.Since(warned) > errorLogPeriod {
					level, warned = slog.LevelWarn, time.Now()
				}
				log.Log(context.Background(), level, "consumer group: retrying", "error", err)
			}
		}()
		defer func() {
			group.Close()
			<-drained
		}()
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		h := &groupHandler{source: s, client: client, emit: emit, connected: connected, cancel: cancel}
		for {
			// One round per group session: a record to be retried ends its round only.
			round, endRound := context.WithCancel(ctx)
			h.startRound(endRound)
			err := group.Consume(round, []string{s.cfg.Topic}, h)
			endRound()
			if err := h.failure(); err != nil {
				return err
			}
			if ctx.Err() != nil {
				return nil
			}
			if again, ok := h.rewound(); ok {
				log.Info("a record is to be delivered again: consuming again from the committed offsets",
					"topic", s.cfg.Topic, "partition", again.partition, "offset", again.offset, "fate", again.fate)
				continue
			}
			if err != nil {
				return fmt.Errorf("consumer group %q: %w", s.cfg.ConsumerGroup.GroupName, err)
			}
			// nil: the group rebalanced (a member came or went, or the coordinator moved);
			// join again.
			log.Debug("consumer group session ended: joining again")
		}
	}
}

// groupHandler runs one group member's sessions; ConsumeClaim runs once per partition,
// concurrently.
type groupHandler struct {
	source    *source
	client    sarama.Client
	emit      server.Emit
	connected func()
	cancel    context.CancelFunc

	mu       sync.Mutex
	err      error
	round    int                // counts the sessions
	endRound context.CancelFunc // ends the current session
	again    *comeAgain         // why the current session was ended, if by a fate
	starts   map[int32]int64    // the current session's starting offsets (see newestOffsets)
}

// comeAgain is the first record of a session whose fate was Retry or Lost.
type comeAgain struct {
	partition int32
	offset    int64
	fate      server.Fate
}

func (h *groupHandler) Setup(sess sarama.ConsumerGroupSession) error {
	starts, err := h.newestOffsets(sess)
	if err != nil {
		return err
	}
	h.mu.Lock()
	h.starts = starts
	h.mu.Unlock()
	h.connected()
	server.LoggerFrom(sess.Context()).Info("consuming as a group member",
		"group", h.source.cfg.ConsumerGroup.GroupName, "claims", sess.Claims(), "generation", sess.GenerationID())
	return nil
}

func (h *groupHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }

// newestOffsets is, with oldest: false, the newest offset of each partition of the session,
// looked up before its claims begin: a claim with no committed offset to resume from starts
// at the partition's newest offset when it begins, that is at this one or after it, with
// nothing handed over in between. (sarama keeps the offset it resolved to itself: the
// claim's InitialOffset is then OffsetNewest.) With oldest: true there is nothing to look
// up: such a claim starts at the oldest offset, and so does the next one.
func (h *groupHandler) newestOffsets(sess sarama.ConsumerGroupSession) (map[int32]int64, error) {
	if h.source.cfg.ConsumerGroup.Oldest {
		return nil, nil
	}
	topic := h.source.cfg.Topic
	partitions := sess.Claims()[topic]
	starts := make(map[int32]int64, len(partitions))
	for _, p := range partitions {
		offset, err := h.client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			return nil, fmt.Errorf("newest offset of %s/%d: %w", topic, p, err)
		}
		starts[p] = offset
	}
	return starts, nil
}

// startOf is partition's offset as newestOffsets looked it up for the session: a claim of it
// that starts at the newest offset starts there or after. false: none was looked up.
func (h *groupHandler) startOf(partition int32) (int64, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	offset, ok := h.starts[partition]
	return offset, ok
}

// ConsumeClaim hands the partition's records over in order and has the acknowledged
// prefix marked as acks come (a goroutine of the claim marks, so that a fate never waits
// for sarama). Records are tracked from hand-off until they are in that prefix, at most
// maxTracked of them.
func (h *groupHandler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	ctx := sess.Context()
	if claim.InitialOffset() == sarama.OffsetNewest {
		// The group has no committed offset for the partition (none yet, or one the broker no
		// longer has), and sarama started the claim at the newest offset, a position that
		// would die with the session: the next one, after a record to be retried or a call
		// that ended, would start at the newest offset again, past the records this one
		// handed over and never saw settled. So their start is committed before the first of
		// them goes: the offset looked up before the claim began, which may come before it
		// but never after. Commit waits for the broker; should it fail, the offset stays
		// marked, for the next commit (every second, and when the session ends).
		if start, ok := h.startOf(claim.Partition()); ok {
			sess.MarkOffset(claim.Topic(), claim.Partition(), start, "")
			sess.Commit()
		}
	}
	rewind := h.rewinder()
	acks := newPartitionAcks()
	stop, marked := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(marked)
		acks.markSettled(stop, func(offset int64) { sess.MarkOffset(claim.Topic(), claim.Partition(), offset, "") })
	}()
	defer func() {
		close(stop)
		<-marked
	}()
	for {
		select {
		case m, ok := <-claim.Messages():
			if !ok {
				return nil
			}
			for !acks.track(m.Offset) {
				select {
				case <-acks.room:
				case <-ctx.Done():
					return nil
				}
			}
			onFate := func(f server.Fate) {
				if acks.settle(m.Offset, f) {
					rewind(comeAgain{partition: m.Partition, offset: m.Offset, fate: f})
				}
			}
			if err := h.source.send(ctx, h.emit, m, onFate); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				h.fail(err)
				return err
			}
		case <-ctx.Done():
			return nil
		}
	}
}

// startRound makes endRound the way to end the session about to start.
func (h *groupHandler) startRound(endRound context.CancelFunc) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.round++
	h.endRound, h.again = endRound, nil
}

// rewinder is how a record of the current session has it consumed again: it ends that
// session (only: a late fate of an earlier session's record ends nothing, as its record
// comes again anyway), so that the group resumes from the committed offsets. It never
// blocks.
func (h *groupHandler) rewinder() func(comeAgain) {
	h.mu.Lock()
	round, endRound := h.round, h.endRound
	h.mu.Unlock()
	return func(c comeAgain) {
		h.mu.Lock()
		if h.round == round && h.again == nil {
			h.again = &c
		}
		h.mu.Unlock()
		endRound()
	}
}

// rewound reports the record for which the last session was ended, if one was.
func (h *groupHandler) rewound() (comeAgain, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.again == nil {
		return comeAgain{}, false
	}
	return *h.again, true
}

// fail ends the member's session with err: the stream is gone, or the record could not be
// encoded; either way the session must not go on past a record it did not deliver.
func (h *groupHandler) fail(err error) {
	h.mu.Lock()
	if h.err == nil {
		h.err = err
	}
	h.mu.Unlock()
	h.cancel()
}

func (h *groupHandler) failure() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.err
}

// connect opens a client to the source's brokers, with its TLS and SASL settings.
func (s *source) connect(ctx context.Context) (sarama.Client, error) {
	sc, err := s.clientConfig(ctx)
	if err != nil {
		return nil, err
	}
	client, err := sarama.NewClient(s.cfg.brokers(), sc)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", s.cfg.URL, err)
	}
	return client, nil
}
