package faults

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kfake"
)

const (
	kafkaTopic      = "faults"
	kafkaGroup      = "faults"
	kafkaPartitions = 2
)

// kafkaBroker is an in-process Kafka-protocol broker (kfake) that keeps its log and the
// groups' committed offsets in a folder, so that a restart is a real one: the port closes,
// connections drop, and the data is there when it comes back on the same port.
type kafkaBroker struct {
	t       *testing.T
	dir     string
	port    int
	mu      sync.Mutex
	cluster *kfake.Cluster
	reaper  *memberReaper // watches every start of the broker
}

func startKafka(t *testing.T) *kafkaBroker {
	b := &kafkaBroker{t: t, dir: t.TempDir()}
	b.reaper = newMemberReaper(t, b.addr)
	b.start()
	_, port, _ := strings.Cut(b.cluster.ListenAddrs()[0], ":")
	b.port, _ = strconv.Atoi(port)
	stop, reaped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(reaped)
		b.reaper.run(stop)
	}()
	t.Cleanup(func() {
		close(stop)
		<-reaped
		b.stop()
	})
	return b
}

func (b *kafkaBroker) start() {
	b.t.Helper()
	var c *kfake.Cluster
	// A port just closed may still be held for a moment.
	err := waitFor(5*time.Second, func() (err error) {
		c, err = kfake.NewCluster(kfake.NumBrokers(1), kfake.DataDir(b.dir), kfake.Ports(b.port),
			kfake.SeedTopics(kafkaPartitions, kafkaTopic))
		return err
	})
	if err != nil {
		b.t.Fatalf("start Kafka broker: %v", err)
	}
	b.reaper.watch(c)
	b.mu.Lock()
	b.cluster = c
	b.mu.Unlock()
}

func (b *kafkaBroker) stop() {
	b.mu.Lock()
	c := b.cluster
	b.cluster = nil
	b.mu.Unlock()
	if c != nil {
		c.Close()
	}
}

func (b *kafkaBroker) addr() string { return fmt.Sprintf("127.0.0.1:%d", b.port) }

func kafkaConfig() *sarama.Config {
	cfg := sarama.NewConfig()
	cfg.Net.DialTimeout = time.Second
	cfg.Net.ReadTimeout = 5 * time.Second
	cfg.Net.WriteTimeout = 5 * time.Second
	cfg.Metadata.Retry.Backoff = 100 * time.Millisecond
	cfg.Producer.Return.Successes = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Partitioner = sarama.NewManualPartitioner
	// The load retries what failed itself, in order; a retry inside the producer could
	// reorder a partition's records.
	cfg.Producer.Retry.Max = 0
	cfg.Net.MaxOpenRequests = 1
	return cfg
}

// kafkaSystem: a consumer-group source over a topic of two partitions, each an ordered
// stream. A record is acknowledged upstream once the broker took it (acks=all) and the
// group's committed offset passed it; the drain waits for the commits to reach the end.
func kafkaSystem(t *testing.T, l *ledger) *system {
	b := startKafka(t)
	var producer sarama.SyncProducer
	t.Cleanup(func() {
		if producer != nil {
			producer.Close()
		}
	})
	publish := func(evs []mark) error {
		if producer == nil {
			p, err := sarama.NewSyncProducer([]string{b.addr()}, kafkaConfig())
			if err != nil {
				return err
			}
			producer = p
		}
		msgs := make([]*sarama.ProducerMessage, len(evs))
		for i, m := range evs {
			p, _ := strconv.Atoi(strings.TrimPrefix(m.Stream, "p"))
			msgs[i] = &sarama.ProducerMessage{Topic: kafkaTopic, Partition: int32(p), Value: sarama.ByteEncoder(m.body())}
		}
		if err := producer.SendMessages(msgs); err != nil {
			// One batch is one partition's, written all or nothing: send it again whole.
			producer.Close()
			producer = nil
			return err
		}
		l.ack(evs...)
		return nil
	}
	streams := make([]string, kafkaPartitions)
	for p := range streams {
		streams[p] = fmt.Sprintf("p%d", p)
	}
	return &system{
		gatewayType: "kafka",
		source: fmt.Sprintf("url: %s\ntopic: %s\njsonBody: true\nbackoff: {duration: 100ms, factor: 1}\nconsumerGroup: {groupName: %s, oldest: true}",
			b.addr(), kafkaTopic, kafkaGroup),
		ordered: true,
		streams: streams,
		send: func(ctx context.Context, evs []mark) {
			retry(ctx, func() error { return publish(evs) })
		},
		brokerFault: "kfake closed and started again on its port and data folder",
		restartBroker: func(t *testing.T, rng *rand.Rand) {
			b.stop()
			time.Sleep(between(rng, time.Second, 4*time.Second)) // the length of the outage
			b.start()
		},
		drained: func() error { return kafkaDrained(b.addr()) },
	}
}

// kafkaDrained reports nil once the group's committed offset is the end of each partition.
func kafkaDrained(addr string) error {
	client, err := sarama.NewClient([]string{addr}, kafkaConfig())
	if err != nil {
		return err
	}
	defer client.Close()
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		return err
	}
	parts := make([]int32, kafkaPartitions)
	for p := range parts {
		parts[p] = int32(p)
	}
	committed, err := admin.ListConsumerGroupOffsets(kafkaGroup, map[string][]int32{kafkaTopic: parts})
	if err != nil {
		return err
	}
	var behind []error
	for _, p := range parts {
		end, err := client.GetOffset(kafkaTopic, p, sarama.OffsetNewest)
		if err != nil {
			return err
		}
		block := committed.GetBlock(kafkaTopic, p)
		if block == nil || block.Offset < end {
			at := int64(-1)
			if block != nil {
				at = block.Offset
			}
			behind = append(behind, fmt.Errorf("partition %d committed at %d of %d", p, at, end))
		}
	}
	return errors.Join(behind...)
}
