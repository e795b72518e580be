package main

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/eventgate/eventgate/pkg/testenv"
	"github.com/eventgate/eventgate/pkg/testenv/amqpenv"
	"github.com/eventgate/eventgate/protos/gateways"
)

// BenchmarkConsume measures messages per second from RabbitMQ: "raw" with amqp091-go
// itself (the baseline), "gateway" through the gateway server's gRPC stream. Both read b.N
// 100-byte messages waiting in a new durable queue, with the gateway's defaults: prefetch
// DefaultPrefetch and one ack per message. Compare the two msgs/s of one run:
//
//	go test -run '^$' -bench Consume -benchtime 20000x ./services/gateways/amqp
func BenchmarkConsume(b *testing.B) {
	broker := amqpenv.Start(b)
	gw := testenv.StartGateway(b, gateway{})
	var runs atomic.Int64
	// fill declares a queue bound to an exchange and puts n messages in it.
	fill := func(b *testing.B, n int) (exchange, queue string) {
		b.Helper()
		run := runs.Add(1)
		exchange, queue = fmt.Sprintf("bench-%d", run), fmt.Sprintf("bench-%d", run)
		declareQueue(b, broker.URL, exchange, "direct", queue, "k")
		msgs := make([]amqp.Publishing, min(n, 1000))
		for i := range msgs {
			msgs[i] = amqp.Publishing{Body: make([]byte, 100)}
		}
		for sent := 0; sent < n; sent += len(msgs) {
			publish(b, broker.URL, exchange, "k", msgs[:min(len(msgs), n-sent)]...)
		}
		return exchange, queue
	}

	b.Run("raw", func(b *testing.B) {
		_, queue := fill(b, b.N)
		b.ResetTimer()
		ch, closeConn := brokerChannel(b, broker.URL)
		defer closeConn()
		if err := ch.Qos(DefaultPrefetch, 0, false); err != nil {
			b.Fatal(err)
		}
		deliveries, err := ch.Consume(queue, "", false, false, false, false, nil)
		if err != nil {
			b.Fatal(err)
		}
		timeout := time.After(5 * time.Minute)
		for i := 0; i < b.N; i++ {
			select {
			case d := <-deliveries:
				if err := d.Ack(false); err != nil {
					b.Fatal(err)
				}
			case <-timeout:
				b.Fatalf("consumed %d of %d", i, b.N)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	})

	b.Run("gateway", func(b *testing.B) {
		exchange, queue := fill(b, b.N)
		b.ResetTimer()
		data := fmt.Sprintf("url: %s\nexchangeName: %s\nexchangeType: direct\nroutingKey: k\nqueueDeclare: {name: %s, durable: true}", broker.URL, exchange, queue)
		s := testenv.OpenStream(b, gw.Client, &gateways.EventSource{Name: "bench", Data: data})
		testenv.ConsumeStream(b, s, nil)
		b.StopTimer()
		s.Close()
	})
}
