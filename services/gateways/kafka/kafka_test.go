package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/eventgate/eventgate/pkg/testenv"
	"github.com/eventgate/eventgate/protos/gateways"
)

// broker is an in-process Kafka-protocol broker (kfake) that keeps its log and committed
// offsets in a directory, so that restart is a real broker restart: connections drop, the
// port is closed for a while, and the data survives.
type broker struct {
	t       testing.TB
	dir     string
	port    int
	cluster *kfake.Cluster
	topics  map[string]int32
}

func startBroker(t testing.TB, topics map[string]int32) *broker {
	t.Helper()
	b := &broker{t: t, dir: t.TempDir(), topics: topics}
	b.start()
	addr := b.cluster.ListenAddrs()[0]
	_, port, _ := strings.Cut(addr, ":")
	b.port, _ = strconv.Atoi(port)
	t.Cleanup(func() { b.cluster.Close() })
	return b
}

func (b *broker) start() {
	b.t.Helper()
	opts := []kfake.Opt{kfake.NumBrokers(1), kfake.DataDir(b.dir), kfake.Ports(b.port)}
	for topic, partitions := range b.topics {
		opts = append(opts, kfake.SeedTopics(partitions, topic))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		b.t.Fatalf("start Kafka broker: %v", err)
	}
	b.cluster = c
}

func (b *broker) addr() string { return fmt.Sprintf("127.0.0.1:%d", b.port) }

// restart stops the broker and starts a new one on the same port and data.
func (b *broker) restart() {
	b.t.Helper()
	b.cluster.Close()
	b.start()
}

// produce writes the records and waits until the broker has them. A new producer each
// time, so that a restarted broker is simply dialled again.
func (b *broker) produce(msgs ...*sarama.ProducerMessage) {
	b.t.Helper()
	cfg := sarama.NewConfig()
	cfg.Producer.Return.Successes = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Partitioner = sarama.NewManualPartitioner
	p, err := sarama.NewSyncProducer([]string{b.addr()}, cfg)
	if err != nil {
		b.t.Fatalf("producer: %v", err)
	}
	defer p.Close()
	if err := p.SendMessages(msgs); err != nil {
		b.t.Fatalf("produce %d records: %v", len(msgs), err)
	}
}

// produceValues writes one record per value to partition 0 of topic.
func (b *broker) produceValues(topic string, values ...string) {
	b.t.Helper()
	msgs := make([]*sarama.ProducerMessage, len(values))
	for i, v := range values {
		msgs[i] = &sarama.ProducerMessage{Topic: topic, Value: sarama.StringEncoder(v)}
	}
	b.produce(msgs...)
}

// committed is the group's committed offset of partition 0 of topic (-1: none).
func (b *broker) committed(group, topic string) int64 {
	b.t.Helper()
	return b.committedAt(group, topic, 0)
}

// committedAt is the group's committed offset of a partition of topic (-1: none), as the
// broker has it.
func (b *broker) committedAt(group, topic string, partition int32) int64 {
	b.t.Helper()
	admin, err := sarama.NewClusterAdmin([]string{b.addr()}, sarama.NewConfig())
	if err != nil {
		b.t.Fatalf("admin: %v", err)
	}
	defer admin.Close()
	resp, err := admin.ListConsumerGroupOffsets(group, map[string][]int32{topic: {partition}})
	if err != nil {
		b.t.Fatalf("committed offsets of %q: %v", group, err)
	}
	return resp.GetBlock(topic, partition).Offset
}

// received is the test's view of an event payload, with the body undecoded.
type received struct {
	Topic     string            `json:"topic"`
	Partition int32             `json:"partition"`
	Offset    int64             `json:"offset"`
	Key       string            `json:"key"`
	Headers   map[string]string `json:"headers"`
	Timestamp time.Time         `json:"timestamp"`
	Body      json.RawMessage   `json:"body"`
}

// bytes is the body as sent.
func (r received) bytes(t testing.TB) []byte {
	t.Helper()
	b, err := testenv.BodyBytes(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// text is the body as sent, as a string.
func (r received) text(t testing.TB) string { return string(r.bytes(t)) }

func decode(t testing.TB, ev *gateways.Event) received {
	t.Helper()
	return testenv.DecodeJSON[received](t, ev)
}

const probe = "probe"

// waitConsuming returns once a source that starts at the newest record is consuming:
// records produced before that are, by design, not its business. Probe records, which
// later reads skip, are produced until one comes through.
func waitConsuming(t testing.TB, b *broker, topic string, s *testenv.Stream) {
	t.Helper()
	testenv.Eventually(t, 30*time.Second, 0, func() error {
		b.produceValues(topic, probe)
		_, err := s.TryNext(300 * time.Millisecond)
		return err
	})
}

// readUntil reads events up to the record with body end, skipping probes, and returns
// the bodies and events before it.
func readUntil(t testing.TB, s *testenv.Stream, end string) ([]string, []received) {
	t.Helper()
	return testenv.ReadUntil(t, s, 60*time.Second, received.text, probe, end)
}

// readN reads the bodies of the next n events, skipping probes.
func readN(t testing.TB, s *testenv.Stream, n int) []string {
	t.Helper()
	return testenv.ReadN(t, s, 60*time.Second, received.text, probe, n)
}

func TestPartitionDeliversExactlyWhatWasPublished(t *testing.T) {
	b := startBroker(t, map[string]int32{"orders": 1})
	gw := testenv.StartGateway(t, gateway{})
	// v0.10 wrote the partition as a string.
	s := testenv.OpenStream(t, gw.Client, &gateways.EventSource{Name: "orders", Data: fmt.Sprintf("url: %s\ntopic: orders\npartition: \"0\"", b.addr())})
	waitConsuming(t, b, "orders", s)

	sent := testenv.Numbered("order", 0, 50)
	b.produceValues("orders", append(sent, "end")...)
	got, events := readUntil(t, s, "end")
	if strings.Join(got, ",") != strings.Join(sent, ",") {
		t.Fatalf("received %d records %v,\nwant exactly the %d published, in order", len(got), got, len(sent))
	}
	for i, r := range events {
		if r.Topic != "orders" || r.Partition != 0 || (i > 0 && r.Offset != events[i-1].Offset+1) || r.Timestamp.IsZero() {
			t.Errorf("event %d metadata: %+v", i, r)
		}
	}
}

func TestPayloadCarriesMetadataAndIntactBodies(t *testing.T) {
	binary := make([]byte, 256)
	for i := range binary {
		binary[i] = byte(i) // every byte value, invalid UTF-8 included
	}
	at := time.Date(2026, 5, 1, 12, 0, 0, 123e6, time.UTC)
	tests := []struct {
		name     string
		jsonBody bool
		value    []byte
		wantBody string // the body field as JSON
	}{
		{name: "binary body", value: binary, wantBody: `"` + base64.StdEncoding.EncodeToString(binary) + `"`},
		{name: "JSON body as bytes by default", value: []byte(`{"id":7}`), wantBody: `"eyJpZCI6N30="`},
		{name: "jsonBody passes JSON through", jsonBody: true, value: []byte(`{"id":7}`), wantBody: `{"id":7}`},
		{name: "jsonBody keeps a non-JSON body as bytes", jsonBody: true, value: []byte("not json"), wantBody: `"bm90IGpzb24="`},
	}
	topics := map[string]int32{}
	for i := range tests {
		topics[fmt.Sprintf("payloads-%d", i)] = 1
	}
	b := startBroker(t, topics)
	gw := testenv.StartGateway(t, gateway{})
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			topic := fmt.Sprintf("payloads-%d", i)
			b.produce(&sarama.ProducerMessage{
				Topic: topic, Key: sarama.StringEncoder("key-1"), Value: sarama.ByteEncoder(tc.value), Timestamp: at,
				Headers: []sarama.RecordHeader{{Key: []byte("trace"), Value: []byte("abc")}},
			})
			data := fmt.Sprintf("url: %s\ntopic: %s\njsonBody: %t\nconsumerGroup: {groupName: %s, oldest: true}", b.addr(), topic, tc.jsonBody, topic)
			s := testenv.OpenStream(t, gw.Client, &gateways.EventSource{Name: "payloads", Data: data})
			ev := s.Next(t, 30*time.Second)
			r := decode(t, ev)
			if string(r.Body) != tc.wantBody {
				t.Errorf("body = %s, want %s", r.Body, tc.wantBody)
			}
			if !bytes.Equal(r.bytes(t), tc.value) {
				t.Errorf("body bytes differ from the record's value")
			}
			if r.Key != "key-1" || r.Headers["trace"] != "abc" || r.Topic != topic || r.Offset != 0 || !r.Timestamp.Equal(at) {
				t.Errorf("metadata = key %q headers %v topic %q offset %d timestamp %v", r.Key, r.Headers, r.Topic, r.Offset, r.Timestamp)
			}
			if key := topic + "/0"; ev.GetOrderingKey() != key || ev.GetId() != key+"/0" {
				t.Errorf("ordering key %q id %q, want the partition %q and its offset", ev.GetOrderingKey(), ev.GetId(), key)
			}
			if !ev.GetTime().AsTime().Equal(at) {
				t.Errorf("event time %v, want the record's timestamp %v", ev.GetTime().AsTime(), at)
			}
		})
	}
}

func TestConsumerGroupResumesFromTheCommittedOffset(t *testing.T) {
	b := startBroker(t, map[string]int32{"jobs": 1})
	gw := testenv.StartGateway(t, gateway{})
	es := &gateways.EventSource{Name: "jobs", Data: fmt.Sprintf("url: %s\ntopic: jobs\nconsumerGroup:\n  groupName: workers\n  oldest: true", b.addr())}

	first := testenv.Numbered("job", 0, 20)
	b.produceValues("jobs", append(first, "end-1")...)
	s := testenv.OpenStream(t, gw.Client, es)
	if got, _ := readUntil(t, s, "end-1"); strings.Join(got, ",") != strings.Join(first, ",") {
		t.Fatalf("first run received %v, want %v", got, first)
	}
	s.Close()
	// The source commits what it delivered when it stops: 21 records, end marker included.
	testenv.Eventually(t, 30*time.Second, 50*time.Millisecond, func() error {
		if off := b.committed("workers", "jobs"); off != 21 {
			return fmt.Errorf("committed offset %d, want 21", off)
		}
		return nil
	})

	second := testenv.Numbered("job", 20, 20)
	b.produceValues("jobs", append(second, "end-2")...)
	s = testenv.OpenStream(t, gw.Client, es)
	got, events := readUntil(t, s, "end-2")
	if strings.Join(got, ",") != strings.Join(second, ",") {
		t.Fatalf("restarted source received %v,\nwant exactly the %d records published since the commit", got, len(second))
	}
	if events[0].Offset != 21 {
		t.Errorf("restarted source began at offset %d, want the committed 21", events[0].Offset)
	}
}

func TestBrokerRestartMidStream(t *testing.T) {
	tests := []struct {
		name, config string
		oldest       bool // the source reads what was published before it started
	}{
		{name: "consumer group", config: "consumerGroup: {groupName: survivors, oldest: true}", oldest: true},
		{name: "single partition", config: `partition: 0`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := startBroker(t, map[string]int32{"events": 1})
			gw := testenv.StartGateway(t, gateway{})
			// v0.10's integer nanoseconds: 50ms between reconnect attempts.
			data := fmt.Sprintf("url: %s\ntopic: events\nbackoff: {duration: 50000000, factor: 1}\n%s", b.addr(), tc.config)
			s := testenv.OpenStream(t, gw.Client, &gateways.EventSource{Name: "events", Data: data})
			if !tc.oldest {
				waitConsuming(t, b, "events", s)
			}
			before, after := testenv.Numbered("event", 0, 100), testenv.Numbered("event", 100, 100)
			b.produceValues("events", before...)
			// Restart while the source is in the middle of the first batch.
			got := readN(t, s, 30)
			b.restart()
			b.produceValues("events", append(after, "end")...)
			rest, _ := readUntil(t, s, "end")
			got = append(got, rest...)

			sent := append(before, after...)
			lost, dups := testenv.Losses(sent, got)
			t.Logf("kafka %s across a broker restart: published %d, received %d, lost %d, duplicates %d", tc.name, len(sent), len(got), lost, dups)
			if lost != 0 {
				t.Errorf("%d records lost across the broker restart", lost)
			}
		})
	}
}

func TestInvalidConfigsOverGRPC(t *testing.T) {
	gw := testenv.StartGateway(t, gateway{})
	testenv.ExpectInvalid(t, gw.Client, []testenv.InvalidCase{
		{Name: "bad URL", Data: "url: 'kafka:port'\ntopic: t", Field: "kafka.url"},
		{Name: "missing topic", Data: "url: localhost:9092", Field: "kafka.topic"},
		{Name: "negative backoff", Data: "url: localhost:9092\ntopic: t\nbackoff: {duration: -1s}", Field: "kafka.backoff.duration"},
		{Name: "partition not a number", Data: "url: localhost:9092\ntopic: t\npartition: first", Field: "kafka.partition"},
	})
}

// An unreachable broker is retried, not fatal: the stream stays open and delivers once
// the broker is there.
func TestSourceWaitsForABrokerThatIsNotThereYet(t *testing.T) {
	port := testenv.FreePort(t)
	gw := testenv.StartGateway(t, gateway{})
	data := fmt.Sprintf("url: %s\ntopic: late\nbackoff: {duration: 50ms, factor: 1}\nconsumerGroup: {groupName: late, oldest: true}", port)
	s := testenv.OpenStream(t, gw.Client, &gateways.EventSource{Name: "late", Data: data})
	if _, err := s.TryNext(500 * time.Millisecond); err != testenv.ErrNoEvent {
		t.Fatalf("without a broker: %v, want no event and an open stream", err)
	}
	_, p, _ := strings.Cut(port, ":")
	b := &broker{t: t, dir: t.TempDir(), topics: map[string]int32{"late": 1}}
	b.port, _ = strconv.Atoi(p)
	b.start()
	t.Cleanup(func() { b.cluster.Close() })
	b.produceValues("late", "hello")
	if r := decode(t, s.Next(t, 30*time.Second)); string(r.bytes(t)) != "hello" {
		t.Errorf("got %q", r.bytes(t))
	}
}

func TestEndToEndThroughTheGatewayClient(t *testing.T) {
	b := startBroker(t, map[string]int32{"orders": 1})
	sensor := testenv.StartEndToEnd(t, gateway{}, "orders", fmt.Sprintf("url: %s\ntopic: orders\njsonBody: true\nconsumerGroup:\n  groupName: e2e\n  oldest: true", b.addr()))
	b.produceValues("orders", `{"order":1}`, `{"order":2}`, `{"order":3}`)

	got, data := testenv.WaitJSON[received](t, sensor, 3, 60*time.Second)
	for i, ev := range got {
		r := data[i]
		want := fmt.Sprintf(`{"order":%d}`, i+1)
		if ev.Type() != gatewayType || ev.Subject() != "orders" || ev.Source() != "kafka-gateway" || string(r.Body) != want || r.Offset != int64(i) {
			t.Errorf("event %d: type %q subject %q source %q body %s offset %d", i, ev.Type(), ev.Subject(), ev.Source(), r.Body, r.Offset)
		}
	}
}
