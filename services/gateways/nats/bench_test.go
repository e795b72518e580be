package main

import (
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/eventgate/eventgate/pkg/testenv"
	"github.com/eventgate/eventgate/pkg/testenv/natsenv"
	"github.com/eventgate/eventgate/protos/gateways"
)

// benchWindow is how many messages the publisher may be ahead of the consumer. Core NATS
// drops what a slow subscriber cannot hold, so an unbounded publisher would measure drops;
// the window is far below the source's bounds, and the benchmark fails on any drop.
const benchWindow = 1000

// BenchmarkConsume measures messages per second from the broker: "raw" with nats.go's own
// subscription (the baseline), "gateway" through the gateway server's gRPC stream. Both
// read b.N 100-byte messages published as they go (at most benchWindow ahead). Compare
// the two msgs/s of one run:
//
//	go test -run '^$' -bench Consume -benchtime 20000x ./services/gateways/nats
func BenchmarkConsume(b *testing.B) {
	url := natsenv.Start(b, -1)
	pub := connect(b, url)
	runs := 0
	// publishing publishes n messages to subject, at most benchWindow ahead of the consumer.
	publishing := func(subject string, n int) *testenv.Window {
		body := make([]byte, 100)
		return testenv.PublishWindowed(n, benchWindow, func() error { return pub.Publish(subject, body) }, pub.Flush)
	}

	b.Run("raw", func(b *testing.B) {
		runs++
		subject := fmt.Sprintf("bench.raw.%d", runs)
		nc := connect(b, url)
		sub, err := nc.SubscribeSync(subject)
		if err != nil {
			b.Fatal(err)
		}
		if err := sub.SetPendingLimits(defaultPendingMsgs, defaultPendingBytes); err != nil {
			b.Fatal(err)
		}
		if err := nc.Flush(); err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		w := publishing(subject, b.N)
		for range b.N {
			if _, err := sub.NextMsg(time.Minute); err != nil {
				b.Fatal(err)
			}
			w.Credit()
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		if err := w.Wait(); err != nil {
			b.Fatal(err)
		}
	})

	b.Run("gateway", func(b *testing.B) {
		runs++
		subject := fmt.Sprintf("bench.gateway.%d", runs)
		subs := make(chan *nats.Subscription, 1)
		gw := newGateway()
		gw.subscribed = func(s *nats.Subscription) { subs <- s }
		server := testenv.StartGateway(b, gw)
		s := testenv.OpenStream(b, server.Client, &gateways.EventSource{Name: "bench", Data: "url: " + url + "\nsubject: " + subject})
		sub := <-subs
		b.ResetTimer()
		w := publishing(subject, b.N)
		testenv.ConsumeStream(b, s, w.Credit)
		b.StopTimer()
		if err := w.Wait(); err != nil {
			b.Fatal(err)
		}
		if dropped, _ := sub.Dropped(); dropped > 0 {
			b.Fatalf("%d messages dropped", dropped)
		}
		s.Close()
	})
}

// BenchmarkJetStream measures messages per second from a JetStream stream holding b.N
// 100-byte messages (published before the timer starts), each acknowledged: "raw" with a
// jetstream pull consumer of nats.go's own, acking each message (the baseline); "gateway"
// through the gateway server on StartEventSource (acked at hand-off, as for a v0.10
// client); "gateway-acked" on StreamEventSource, the test acking every event as delivered
// as the gateway-client does, and the gateway then acking the message.
//
//	go test -run '^$' -bench JetStream -benchtime 20000x ./services/gateways/nats
func BenchmarkJetStream(b *testing.B) {
	ns := natsenv.StartJetStream(b, -1, b.TempDir())
	js, err := jetstream.New(connect(b, ns.ClientURL()))
	if err != nil {
		b.Fatal(err)
	}
	runs := 0
	// stream creates a stream of its own holding n messages and returns its name.
	stream := func(n int) string {
		runs++
		name := fmt.Sprintf("BENCH%d", runs)
		if _, err := js.CreateStream(b.Context(), jetstream.StreamConfig{Name: name, Subjects: []string{name + ".>"}}); err != nil {
			b.Fatal(err)
		}
		body := make([]byte, 100)
		for range n {
			if _, err := js.PublishAsync(name+".m", body); err != nil {
				b.Fatal(err)
			}
		}
		select {
		case <-js.PublishAsyncComplete():
		case <-time.After(time.Minute):
			b.Fatal("stream not filled within a minute")
		}
		return name
	}
	source := func(name string) *gateways.EventSource {
		return &gateways.EventSource{Name: "bench", Data: fmt.Sprintf("url: %s\nsubject: %s.m\njetStream: {stream: %s, consumer: bench}", ns.ClientURL(), name, name)}
	}

	b.Run("raw", func(b *testing.B) {
		name := stream(b.N)
		c, err := js.CreateOrUpdateConsumer(b.Context(), name, jetstream.ConsumerConfig{Durable: "bench", AckPolicy: jetstream.AckExplicitPolicy})
		if err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		msgs, err := c.Messages(jetstream.PullMaxMessages(pullBatch))
		if err != nil {
			b.Fatal(err)
		}
		defer msgs.Stop()
		for range b.N {
			msg, err := msgs.Next(jetstream.NextMaxWait(time.Minute))
			if err != nil {
				b.Fatal(err)
			}
			if err := msg.Ack(); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	})

	b.Run("gateway", func(b *testing.B) {
		name := stream(b.N)
		server := testenv.StartGateway(b, newGateway())
		b.ResetTimer()
		s := testenv.OpenStream(b, server.Client, source(name))
		testenv.ConsumeStream(b, s, nil)
		b.StopTimer()
		s.Close()
	})

	b.Run("gateway-acked", func(b *testing.B) {
		name := stream(b.N)
		server := testenv.StartGateway(b, newGateway())
		b.ResetTimer()
		s := testenv.OpenAckedStream(b, server.Client, source(name), 0)
		for range b.N {
			ev := s.Next(b, time.Minute)
			s.Ack(b, gateways.Ack_OUTCOME_DELIVERED, ev.GetSeq())
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		b.StopTimer()
		s.Close()
	})
}
