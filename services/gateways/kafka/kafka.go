package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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

// send emits one record; the error is the stream's, and means the record was not handed over.
func (s *source) send(ctx context.Context, emit server.Emit, m *sarama.ConsumerMessage) error {
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
	if err := emit(ctx, ev); err != nil {
		return fmt.Errorf("emit %s/%d@%d: %w", m.Topic, m.Partition, m.Offset, err)
	}
	return nil
}

// partitionSession consumes the configured partition. The first session starts at the
// newest message, as v0.10 did; later ones resume right after the last record delivered,
// so a broker restart loses nothing that the broker kept. That position lives in memory:
// a restarted source starts at the newest message again (use a consumer group to resume).
func (s *source) partitionSession(emit server.Emit) server.Session {
	next := sarama.OffsetNewest
	partition, _ := s.cfg.partition() // validated in Parse
	return func(ctx context.Context, connected func()) error {
		log := server.LoggerFrom(ctx)
		sc, err := s.clientConfig(ctx)
		if err != nil {
			return err
		}
		client, err := sarama.NewClient(s.cfg.brokers(), sc)
		if err != nil {
			return fmt.Errorf("connect to %s: %w", s.cfg.URL, err)
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
				if err := s.send(ctx, emit, m); err != nil {
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
// only after emit returned, and sarama commits marked offsets every second and when the
// session ends: what was not handed over is delivered again after any restart, and what
// was handed over in the last second before a crash or a broker loss may come twice
// (at-least-once). sarama rides out a short broker loss by itself; a longer one ends the
// group session, and Reconnect starts a new one.
func (s *source) groupSession(emit server.Emit) server.Session {
	return func(ctx context.Context, connected func()) error {
		log := server.LoggerFrom(ctx)
		sc, err := s.clientConfig(ctx)
		if err != nil {
			return err
		}
		client, err := sarama.NewClient(s.cfg.brokers(), sc)
		if err != nil {
			return fmt.Errorf("connect to %s: %w", s.cfg.URL, err)
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
		h := &groupHandler{source: s, emit: emit, connected: connected, cancel: cancel}
		for {
			err := group.Consume(ctx, []string{s.cfg.Topic}, h)
			if err := h.failure(); err != nil {
				return err
			}
			if ctx.Err() != nil {
				return nil
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
	emit      server.Emit
	connected func()
	cancel    context.CancelFunc

	mu  sync.Mutex
	err error
}

func (h *groupHandler) Setup(sess sarama.ConsumerGroupSession) error {
	h.connected()
	server.LoggerFrom(sess.Context()).Info("consuming as a group member",
		"group", h.source.cfg.ConsumerGroup.GroupName, "claims", sess.Claims(), "generation", sess.GenerationID())
	return nil
}

func (h *groupHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }

func (h *groupHandler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	ctx := sess.Context()
	for {
		select {
		case m, ok := <-claim.Messages():
			if !ok {
				return nil
			}
			if err := h.source.send(ctx, h.emit, m); err != nil {
				if ctx.Err() == nil {
					h.fail(err)
				}
				return err
			}
			sess.MarkMessage(m, "")
		case <-ctx.Done():
			return nil
		}
	}
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
