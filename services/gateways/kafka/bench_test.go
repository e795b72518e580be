package main

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/eventgate/eventgate/pkg/testenv"
	"github.com/eventgate/eventgate/protos/gateways"
)

// BenchmarkConsume measures records per second from the broker: "raw" with sarama's own
// consumer group (the baseline), "gateway" through the gateway server's gRPC stream with
// the same consumer group settings. Both read b.N fresh 100-byte records of a new topic
// from the oldest, joining the group included. Compare the two msgs/s of one run:
//
//	go test -run '^$' -bench Consume -benchtime 20000x ./services/gateways/kafka
func BenchmarkConsume(b *testing.B) {
	br := startBroker(b, nil)
	gw := testenv.StartGateway(b, gateway{})
	admin, err := sarama.NewClusterAdmin([]string{br.addr()}, sarama.NewConfig())
	if err != nil {
		b.Fatal(err)
	}
	defer admin.Close()
	var runs atomic.Int64
	// fill creates a topic holding n records, and names it and a new group.
	fill := func(b *testing.B, n int) (topic, group string) {
		b.Helper()
		run := runs.Add(1)
		topic, group = fmt.Sprintf("bench-%d", run), fmt.Sprintf("bench-group-%d", run)
		if err := admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: 1}, false); err != nil {
			b.Fatal(err)
		}
		value := make([]byte, 100)
		for sent := 0; sent < n; {
			batch := make([]*sarama.ProducerMessage, min(1000, n-sent))
			for i := range batch {
				batch[i] = &sarama.ProducerMessage{Topic: topic, Value: sarama.ByteEncoder(value)}
			}
			br.produce(batch...)
			sent += len(batch)
		}
		return topic, group
	}

	b.Run("raw", func(b *testing.B) {
		topic, group := fill(b, b.N)
		cfg, err := (&Config{ConsumerGroup: &ConsumerGroup{GroupName: group, Oldest: true}}).saramaConfig()
		if err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		cg, err := sarama.NewConsumerGroup([]string{br.addr()}, group, cfg)
		if err != nil {
			b.Fatal(err)
		}
		defer cg.Close()
		go func() {
			for range cg.Errors() {
			}
		}()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		h := &countHandler{want: int64(b.N), done: cancel}
		for ctx.Err() == nil {
			if err := cg.Consume(ctx, []string{topic}, h); err != nil && ctx.Err() == nil {
				b.Fatal(err)
			}
		}
		if h.n.Load() < int64(b.N) {
			b.Fatalf("consumed %d of %d", h.n.Load(), b.N)
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	})

	b.Run("gateway", func(b *testing.B) {
		topic, group := fill(b, b.N)
		b.ResetTimer()
		data := fmt.Sprintf("url: %s\ntopic: %s\nconsumerGroup: {groupName: %s, oldest: true}", br.addr(), topic, group)
		s := testenv.OpenStream(b, gw.Client, &gateways.EventSource{Name: "bench", Data: data})
		testenv.ConsumeStream(b, s, nil)
		b.StopTimer()
		s.Close()
	})
}

// countHandler marks every record, as the gateway does, and stops after want.
type countHandler struct {
	want int64
	n    atomic.Int64
	done context.CancelFunc
}

func (h *countHandler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (h *countHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }

func (h *countHandler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for m := range claim.Messages() {
		sess.MarkMessage(m, "")
		if h.n.Add(1) == h.want {
			h.done()
		}
	}
	return nil
}
