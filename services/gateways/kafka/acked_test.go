package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/eventgate/eventgate/pkg/sensorsink"
	"github.com/eventgate/eventgate/pkg/testenv"
	"github.com/eventgate/eventgate/protos/gateways"
)

// runAsGateway makes this test binary the Kafka gateway process when a test re-executes it:
// main runs as it does in a pod.
const runAsGateway = "EVENTGATE_TEST_RUN_AS_KAFKA_GATEWAY"

func TestMain(m *testing.M) { os.Exit(testenv.MainOrTests(m, runAsGateway, main, nil)) }

// startGatewayProcess runs this test binary as the gateway server, a process of its own.
func startGatewayProcess(t testing.TB) (*testenv.Gateway, *testenv.Process) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return testenv.StartGatewayProcess(t, exe, nil, runAsGateway+"=1")
}

// ackedRecord is one event of a StreamEventSource call: the seq to acknowledge it by, and
// the record it carries.
type ackedRecord struct {
	seq uint64
	received
}

func readAcked(t testing.TB, s *testenv.AckedStream, n int) []ackedRecord {
	t.Helper()
	got := make([]ackedRecord, n)
	for i := range got {
		ev := s.Next(t, 30*time.Second)
		got[i] = ackedRecord{seq: ev.GetSeq(), received: decode(t, ev)}
	}
	return got
}

// seqsAt are the seqs of the records at offsets of partition.
func seqsAt(t testing.TB, recs []ackedRecord, partition int32, offsets ...int64) []uint64 {
	t.Helper()
	seqs := make([]uint64, 0, len(offsets))
	for _, o := range offsets {
		found := false
		for _, r := range recs {
			if r.Partition == partition && r.Offset == o {
				seqs, found = append(seqs, r.seq), true
				break
			}
		}
		if !found {
			t.Fatalf("no record at offset %d of partition %d among those read", o, partition)
		}
	}
	return seqs
}

// produceTo writes one record per value to partition of topic.
func (b *broker) produceTo(topic string, partition int32, values ...string) {
	b.t.Helper()
	msgs := make([]*sarama.ProducerMessage, len(values))
	for i, v := range values {
		msgs[i] = &sarama.ProducerMessage{Topic: topic, Partition: partition, Value: sarama.StringEncoder(v)}
	}
	b.produce(msgs...)
}

// waitCommitted waits until the group's committed offset of the partition differs from
// was, and returns it.
func (b *broker) waitCommitted(group, topic string, partition int32, was int64) int64 {
	b.t.Helper()
	var now int64
	testenv.Eventually(b.t, 30*time.Second, 20*time.Millisecond, func() error {
		if now = b.committedAt(group, topic, partition); now == was {
			return fmt.Errorf("committed offset of %s/%d still %d", topic, partition, was)
		}
		return nil
	})
	return now
}

func groupSource(b *broker, topic, group string) *gateways.EventSource {
	return &gateways.EventSource{Name: topic, Data: fmt.Sprintf("url: %s\ntopic: %s\nconsumerGroup: {groupName: %s, oldest: true}", b.addr(), topic, group)}
}

func TestGroupCommitsOnlyTheAcknowledgedPrefix(t *testing.T) {
	b := startBroker(t, map[string]int32{"prefix": 2})
	gw := testenv.StartGateway(t, gateway{})
	b.produceTo("prefix", 0, testenv.Numbered("record", 0, 10)...)
	s := testenv.OpenAckedStream(t, gw.Client, groupSource(b, "prefix", "prefix"), 20)
	recs := readAcked(t, s, 10)

	// Nothing is committed before the ack: a record of the other partition, handed over
	// after all ten and acknowledged, is committed while the ten are not.
	b.produceTo("prefix", 1, "witness")
	witness := readAcked(t, s, 1)
	s.Ack(t, gateways.Ack_OUTCOME_DELIVERED, witness[0].seq)
	if got := b.waitCommitted("prefix", "prefix", 1, -1); got != 1 {
		t.Fatalf("witness partition committed at %d, want 1", got)
	}
	if got := b.committedAt("prefix", "prefix", 0); got != -1 {
		t.Fatalf("committed offset %d with no record of the partition acknowledged, want none", got)
	}

	steps := []struct {
		name    string
		outcome gateways.Ack_Outcome
		offsets []int64 // acknowledged in this order, one ack each
		batch   bool    // in one ack instead
		want    int64   // the committed offset once the step is acknowledged
	}{
		// 4, 2 and 1 out of order: a gap at 0, so nothing moves until 0 comes; then the
		// prefix stops at the gap at 3.
		{name: "out of order, then the first", outcome: gateways.Ack_OUTCOME_DELIVERED, offsets: []int64{4, 2, 1, 0}, want: 3},
		{name: "dropped counts as handled", outcome: gateways.Ack_OUTCOME_DROPPED, offsets: []int64{3}, want: 5},
		{name: "a batch out of order", outcome: gateways.Ack_OUTCOME_DELIVERED, offsets: []int64{9, 6, 8, 7, 5}, batch: true, want: 10},
	}
	was := int64(-1)
	for _, st := range steps {
		seqs := seqsAt(t, recs, 0, st.offsets...)
		if st.batch {
			s.Ack(t, st.outcome, seqs...)
		} else {
			for _, seq := range seqs {
				s.Ack(t, st.outcome, seq)
			}
		}
		// The first commit after the step must be the prefix itself: a commit past a gap
		// would show first. (Each step's last ack completes its prefix, so no commit of a
		// shorter one can come between.)
		if was = b.waitCommitted("prefix", "prefix", 0, was); was != st.want {
			t.Fatalf("%s: committed offset %d, want %d", st.name, was, st.want)
		}
	}
}

func TestRetryFateRedeliversTheRecord(t *testing.T) {
	b := startBroker(t, map[string]int32{"retries": 1})
	gw := testenv.StartGateway(t, gateway{})
	b.produceValues("retries", testenv.Numbered("record", 0, 5)...)
	s := testenv.OpenAckedStream(t, gw.Client, groupSource(b, "retries", "retries"), 10)
	recs := readAcked(t, s, 5)

	s.Ack(t, gateways.Ack_OUTCOME_DELIVERED, seqsAt(t, recs, 0, 1, 0)...)
	s.Ack(t, gateways.Ack_OUTCOME_DELIVERED, seqsAt(t, recs, 0, 4, 3)...) // after the one to retry
	s.Ack(t, gateways.Ack_OUTCOME_RETRY, seqsAt(t, recs, 0, 2)...)

	// It comes again on the same call, and so do the ones after it (duplicates).
	again := readAcked(t, s, 3)
	for i, r := range again {
		if want := int64(2 + i); r.Offset != want || r.text(t) != testenv.Numbered("record", int(want), 1)[0] {
			t.Fatalf("after the retry, event %d is offset %d %q, want offset %d again", i, r.Offset, r.text(t), want)
		}
		if r.seq <= recs[len(recs)-1].seq {
			t.Fatalf("redelivered record has seq %d, want a new one", r.seq)
		}
	}
	if got := b.committed("retries", "retries"); got != 2 {
		t.Fatalf("committed offset %d once the retried record came again, want 2 (below it)", got)
	}
	s.Ack(t, gateways.Ack_OUTCOME_DELIVERED, again[1].seq, again[2].seq, again[0].seq)
	if got := b.waitCommitted("retries", "retries", 0, 2); got != 5 {
		t.Fatalf("committed offset %d once all were delivered, want 5", got)
	}
}

func TestRecordsOfADeadCallComeAgainOnTheNextCall(t *testing.T) {
	b := startBroker(t, map[string]int32{"lost": 1})
	gw := testenv.StartGateway(t, gateway{})
	b.produceValues("lost", testenv.Numbered("record", 0, 5)...)
	es := groupSource(b, "lost", "lost")
	s := testenv.OpenAckedStream(t, gw.Client, es, 10)
	recs := readAcked(t, s, 5)
	s.Ack(t, gateways.Ack_OUTCOME_DELIVERED, seqsAt(t, recs, 0, 1, 3, 0)...)
	// The client dies: the call ends with 2 and 4 unacknowledged (Lost).
	if got := b.waitCommitted("lost", "lost", 0, -1); got != 2 {
		t.Fatalf("committed offset %d, want 2", got)
	}
	s.Close()

	s = testenv.OpenAckedStream(t, gw.Client, es, 10)
	got := readAcked(t, s, 3)
	for i, r := range got {
		if want := int64(2 + i); r.Offset != want {
			t.Fatalf("next call's event %d is offset %d, want %d: every record from the first unacknowledged one", i, r.Offset, want)
		}
	}
	if got := b.committed("lost", "lost"); got != 2 {
		t.Fatalf("committed offset %d after the call died, want 2", got)
	}
}

// A gateway server killed with SIGKILL has committed no further than the acknowledged
// prefix: the next one starts at the first record not acknowledged.
func TestKilledGatewayCommittedOnlyTheAcknowledgedPrefix(t *testing.T) {
	b := startBroker(t, map[string]int32{"crash": 1})
	es := groupSource(b, "crash", "crash")
	b.produceValues("crash", testenv.Numbered("record", 0, 10)...)
	gw, proc := startGatewayProcess(t)
	s := testenv.OpenAckedStream(t, gw.Client, es, 20)
	recs := readAcked(t, s, 10)
	s.Ack(t, gateways.Ack_OUTCOME_DELIVERED, seqsAt(t, recs, 0, 3, 1, 2, 6, 9, 0)...)
	if got := b.waitCommitted("crash", "crash", 0, -1); got != 4 {
		t.Fatalf("committed offset %d, want 4", got)
	}
	proc.Kill()
	if got := b.committed("crash", "crash"); got != 4 {
		t.Fatalf("committed offset %d once the gateway was killed, want 4", got)
	}

	gw, _ = startGatewayProcess(t)
	s = testenv.OpenAckedStream(t, gw.Client, es, 20)
	for i, r := range readAcked(t, s, 6) {
		if want := int64(4 + i); r.Offset != want {
			t.Fatalf("after the crash, event %d is offset %d, want %d: every record from the first unacknowledged one", i, r.Offset, want)
		}
	}
}

// The real gateway-client, killed with SIGKILL while its sensor holds the deliveries, leaves
// nothing committed: the next client delivers every record.
func TestKilledClientsRecordsReachTheSensorThroughTheNextClient(t *testing.T) {
	b := startBroker(t, map[string]int32{"killed": 1})
	gw := testenv.StartGateway(t, gateway{})
	sensor := testenv.StartSensor(t, sensorsink.Endpoints{}, sensorsink.WithMode(sensorsink.ModeStall))
	cfg := testenv.ClientConfig{
		GatewayType: gatewayType,
		Servers:     []string{gw.Addr},
		Sensors:     []string{sensor.URL},
		Sources:     map[string]string{"killed": groupSource(b, "killed", "killed").GetData()},
	}
	client := testenv.StartClient(t, cfg)
	sent := testenv.Numbered("record", 0, 5)
	b.produceValues("killed", sent...)
	testenv.Eventually(t, 30*time.Second, 20*time.Millisecond, func() error {
		if sensor.Stats().Held == 0 {
			return fmt.Errorf("no delivery held by the sensor yet")
		}
		return nil
	})
	client.Kill()
	sensor.SetMode(sensorsink.ModeOK)
	if got := b.committed("killed", "killed"); got != -1 {
		t.Fatalf("committed offset %d with nothing delivered, want none", got)
	}

	testenv.StartClient(t, cfg)
	_, data := testenv.WaitJSON[received](t, sensor, len(sent), 60*time.Second)
	got := make([]string, len(data))
	for i, r := range data {
		got[i] = r.text(t)
	}
	if lost, _ := testenv.Losses(sent, got); lost != 0 {
		t.Fatalf("the sensor got %v, want every one of %v", got, sent)
	}
	if c := b.waitCommitted("killed", "killed", 0, -1); c > int64(len(sent)) {
		t.Fatalf("committed offset %d past the records", c)
	}
}

// A member joining takes a partition away: the partition is committed no further than its
// acknowledged prefix, so the new owner starts right after it.
func TestRebalanceCommitsNoMoreThanTheAcknowledgedPrefix(t *testing.T) {
	b := startBroker(t, map[string]int32{"shared": 2})
	gw := testenv.StartGateway(t, gateway{})
	for p := range int32(2) {
		b.produceTo("shared", p, testenv.Numbered(fmt.Sprintf("p%d", p), 0, 3)...)
	}
	s := testenv.OpenAckedStream(t, gw.Client, groupSource(b, "shared", "shared"), 10)
	recs := readAcked(t, s, 6)
	s.Ack(t, gateways.Ack_OUTCOME_DELIVERED, seqsAt(t, recs, 0, 0)[0], seqsAt(t, recs, 1, 0)[0])
	for p := range int32(2) {
		if got := b.waitCommitted("shared", "shared", p, -1); got != 1 {
			t.Fatalf("partition %d committed at %d, want 1", p, got)
		}
	}

	// The second member marks nothing: it only reports where its partitions start.
	first := joinGroup(t, b, "shared", true)
	select {
	case m := <-first:
		if want := testenv.Numbered(fmt.Sprintf("p%d", m.Partition), 1, 1)[0]; m.Offset != 1 || string(m.Value) != want {
			t.Fatalf("new owner of partition %d starts at offset %d (%q), want 1, right after the acknowledged prefix", m.Partition, m.Offset, m.Value)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the joining member got no partition within a minute")
	}
	for p := range int32(2) {
		if got := b.committedAt("shared", "shared", p); got != 1 {
			t.Errorf("partition %d committed at %d after the rebalance, want 1", p, got)
		}
	}
}

// firstRecords is a group member's handler that reports the first record of each claim
// and marks nothing.
type firstRecords chan *sarama.ConsumerMessage

func (firstRecords) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (firstRecords) Cleanup(sarama.ConsumerGroupSession) error { return nil }

func (f firstRecords) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	reported := false
	for m := range claim.Messages() {
		if !reported {
			reported = true
			select {
			case f <- m:
			case <-sess.Context().Done():
			}
		}
	}
	return nil
}

// A group without oldest starts a partition it never committed at the newest record. The
// records handed over from there and not acknowledged must come again like any others:
// the claim's start is committed before them, so that nothing resumes at the newest record
// again, past them.

// newestGroupSource consumes topic in group from the newest record (oldest: false).
func newestGroupSource(b *broker, topic, group string) *gateways.EventSource {
	return &gateways.EventSource{Name: topic, Data: fmt.Sprintf("url: %s\ntopic: %s\nconsumerGroup: {groupName: %s}", b.addr(), topic, group)}
}

// handOver waits until a source that starts at the newest record consumes the partitions
// of topic, producing a probe to each until one of each came through, then produces values
// to each and reads up to the last of them. It returns, per partition, every record handed
// over, in order: the probes, then the values.
func handOver(t testing.TB, b *broker, s *testenv.AckedStream, topic string, partitions int32, values ...string) map[int32][]ackedRecord {
	t.Helper()
	handed := map[int32][]ackedRecord{}
	testenv.Eventually(t, 30*time.Second, 0, func() error {
		for p := range partitions {
			if len(handed[p]) == 0 {
				b.produceTo(topic, p, probe)
			}
		}
		for {
			ev, err := s.TryNext(500 * time.Millisecond)
			if err != nil {
				break
			}
			r := ackedRecord{seq: ev.GetSeq(), received: decode(t, ev)}
			handed[r.Partition] = append(handed[r.Partition], r)
		}
		if n := int32(len(handed)); n < partitions {
			return fmt.Errorf("records of %d of the %d partitions came through", n, partitions)
		}
		return nil
	})
	last := values[len(values)-1]
	for p := range partitions {
		b.produceTo(topic, p, values...)
	}
	for p := range partitions {
		for len(handed[p]) == 0 || handed[p][len(handed[p])-1].text(t) != last {
			r := readAcked(t, s, 1)[0]
			handed[r.Partition] = append(handed[r.Partition], r)
		}
	}
	return handed
}

// expectAgain reads the records that come next and fails unless they are those handed over
// (of one partition of topic), again, in order. They may come after records older than the
// first of them: a claim that starts at the newest record commits a start that can come
// before it, never after. Nothing is produced while they are awaited, so that nothing newer
// can come first; if none came, a witness is, to show where the group resumed.
func expectAgain(t testing.TB, b *broker, s *testenv.AckedStream, topic string, handed []ackedRecord) {
	t.Helper()
	first, last := handed[0], handed[len(handed)-1]
	ev, err := s.TryNext(30 * time.Second)
	if errors.Is(err, testenv.ErrNoEvent) {
		b.produceTo(topic, first.Partition, "witness")
		ev, err = s.TryNext(30 * time.Second)
	}
	if err != nil {
		t.Fatalf("the %d records handed over and not acknowledged (offsets %d to %d) did not come again: %v",
			len(handed), first.Offset, last.Offset, err)
	}
	got := []ackedRecord{{seq: ev.GetSeq(), received: decode(t, ev)}}
	if got[0].Offset > first.Offset {
		t.Fatalf("the group resumed at offset %d (%q), past the records handed over and not acknowledged from offset %d (%q)",
			got[0].Offset, got[0].text(t), first.Offset, first.text(t))
	}
	for got[len(got)-1].Offset < last.Offset {
		got = append(got, readAcked(t, s, 1)...)
	}
	for i, r := range got {
		if want := got[0].Offset + int64(i); r.Offset != want || r.Partition != first.Partition {
			t.Fatalf("event %d after the rewind is %d@%d, want %d@%d", i, r.Partition, r.Offset, first.Partition, want)
		}
	}
	again := got[len(got)-len(handed):]
	for i, r := range handed {
		if again[i].text(t) != r.text(t) {
			t.Fatalf("offset %d came again as %q, was %q", r.Offset, again[i].text(t), r.text(t))
		}
	}
}

func TestNewGroupRetriedRecordComesAgainBeforeAnyCommit(t *testing.T) {
	b := startBroker(t, map[string]int32{"fresh": 1})
	gw := testenv.StartGateway(t, gateway{})
	s := testenv.OpenAckedStream(t, gw.Client, newestGroupSource(b, "fresh", "fresh"), 50)
	handed := handOver(t, b, s, "fresh", 1, testenv.Numbered("record", 0, 3)...)[0]

	// Nothing acknowledged, so nothing settled to commit: the first record is to be retried.
	s.Ack(t, gateways.Ack_OUTCOME_RETRY, handed[0].seq)
	expectAgain(t, b, s, "fresh", handed)
	if got := b.committed("fresh", "fresh"); got < 0 || got > handed[0].Offset {
		t.Fatalf("committed offset %d, want the claim's start, at most %d", got, handed[0].Offset)
	}
}

func TestNewGroupRecordsOfADeadCallComeAgainOnTheNextCall(t *testing.T) {
	b := startBroker(t, map[string]int32{"restarted": 1})
	gw := testenv.StartGateway(t, gateway{})
	es := newestGroupSource(b, "restarted", "restarted")
	s := testenv.OpenAckedStream(t, gw.Client, es, 50)
	handed := handOver(t, b, s, "restarted", 1, testenv.Numbered("record", 0, 3)...)[0]
	// The client restarts before its sensor acknowledged anything: the call ends with every
	// record handed over unacknowledged (Lost).
	s.Close()

	expectAgain(t, b, testenv.OpenAckedStream(t, gw.Client, es, 50), "restarted", handed)
}

// The start is committed when the claim begins, not only when its session ends: a gateway
// killed before anything was acknowledged leaves it behind.
func TestNewGroupStartSurvivesAKilledGateway(t *testing.T) {
	b := startBroker(t, map[string]int32{"killed-new": 1})
	es := newestGroupSource(b, "killed-new", "killed-new")
	gw, proc := startGatewayProcess(t)
	handed := handOver(t, b, testenv.OpenAckedStream(t, gw.Client, es, 50), "killed-new", 1, testenv.Numbered("record", 0, 3)...)[0]
	proc.Kill()
	if got := b.committed("killed-new", "killed-new"); got < 0 || got > handed[0].Offset {
		t.Fatalf("committed offset %d once the gateway was killed, want the claim's start, at most %d", got, handed[0].Offset)
	}

	gw, _ = startGatewayProcess(t)
	expectAgain(t, b, testenv.OpenAckedStream(t, gw.Client, es, 50), "killed-new", handed)
}

// A member joining takes a partition away before anything of it was acknowledged: the new
// owner starts at the first record handed over, not at the newest.
func TestNewGroupRebalanceHandsOnTheClaimsStart(t *testing.T) {
	b := startBroker(t, map[string]int32{"shared-new": 2})
	gw := testenv.StartGateway(t, gateway{})
	s := testenv.OpenAckedStream(t, gw.Client, newestGroupSource(b, "shared-new", "shared-new"), 50)
	handed := handOver(t, b, s, "shared-new", 2, testenv.Numbered("record", 0, 3)...)

	// The second member starts from the newest record too, where the group committed none.
	first := joinGroup(t, b, "shared-new", false)
	// Nothing is produced while its first record is awaited, so that nothing newer can come
	// first; if none came, a witness to each partition is, to show where it started.
	var m *sarama.ConsumerMessage
	select {
	case m = <-first:
	case <-time.After(30 * time.Second):
		for p := range int32(2) {
			b.produceTo("shared-new", p, "witness")
		}
		select {
		case m = <-first:
		case <-time.After(30 * time.Second):
			t.Fatal("the joining member got no partition within a minute")
		}
	}
	if h := handed[m.Partition][0]; m.Offset > h.Offset {
		t.Fatalf("new owner of partition %d starts at offset %d (%q), past the records handed over and not acknowledged from offset %d (%q)",
			m.Partition, m.Offset, m.Value, h.Offset, h.text(t))
	}
}

// joinGroup adds a second member to group (named as its topic) until the test ends; it
// marks nothing, and reports the first record of each partition it is given on the channel.
func joinGroup(t *testing.T, b *broker, group string, oldest bool) <-chan *sarama.ConsumerMessage {
	t.Helper()
	cfg, err := (&Config{ConsumerGroup: &ConsumerGroup{GroupName: group, Oldest: oldest}}).saramaConfig()
	if err != nil {
		t.Fatal(err)
	}
	member, err := sarama.NewConsumerGroup([]string{b.addr()}, group, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	first := make(chan *sarama.ConsumerMessage, 2)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			_ = member.Consume(ctx, []string{group}, firstRecords(first))
		}
	}()
	go func() {
		for range member.Errors() {
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		member.Close()
	})
	return first
}
