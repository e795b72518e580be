package main

import (
	"fmt"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/eventgate/eventgate/pkg/testenv"
	"github.com/eventgate/eventgate/pkg/testenv/mqttenv"
	"github.com/eventgate/eventgate/protos/gateways"
)

// benchWindow is how many messages the publisher may be ahead of the consumer: the broker
// drops QoS 1 messages beyond a client's write queue (8192 with mochi's defaults), and
// the benchmark measures delivery, not drops.
const benchWindow = 1000

// BenchmarkConsume measures QoS 1 messages per second from the broker: "raw" with paho's
// own subscription (the baseline, acknowledging each message in its handler), "gateway"
// through the gateway server's StartEventSource stream (what a client with --ack-window 0
// gets: each message acknowledged after hand-off), "gateway-acked" through a
// StreamEventSource call with the default window, whose reader acknowledges each event as
// delivered as soon as it has it (each message acknowledged to the broker after that). All
// read b.N 100-byte messages published by the broker's inline client as they go (at most
// benchWindow ahead). Compare the msgs/s of one run:
//
//	go test -run '^$' -bench Consume -benchtime 20000x ./services/gateways/mqtt
func BenchmarkConsume(b *testing.B) {
	broker := mqttenv.Start(b)
	runs := 0
	// publishing publishes n messages to topic, at most benchWindow ahead of the consumer.
	publishing := func(topic string, n int) *testenv.Window {
		body := make([]byte, 100)
		return testenv.PublishWindowed(n, benchWindow, func() error { return broker.Publish(topic, body, 1) }, nil)
	}

	b.Run("raw", func(b *testing.B) {
		runs++
		topic := fmt.Sprintf("bench/raw/%d", runs)
		got := make(chan struct{}, benchWindow)
		opts := paho.NewClientOptions().AddBroker(broker.URL).SetClientID(fmt.Sprintf("bench-raw-%d", runs)).
			SetOrderMatters(true).SetAutoReconnect(false)
		client := paho.NewClient(opts)
		if tok := client.Connect(); tok.Wait() && tok.Error() != nil {
			b.Fatal(tok.Error())
		}
		defer client.Disconnect(0)
		if tok := client.Subscribe(topic, 1, func(paho.Client, paho.Message) { got <- struct{}{} }); tok.Wait() && tok.Error() != nil {
			b.Fatal(tok.Error())
		}
		b.ResetTimer()
		w := publishing(topic, b.N)
		for range b.N {
			select {
			case <-got:
			case <-time.After(time.Minute):
				b.Fatal("no message within a minute")
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
		topic := fmt.Sprintf("bench/gateway/%d", runs)
		server := testenv.StartGateway(b, &gateway{})
		data := fmt.Sprintf("url: %s\ntopic: %s\nclientId: bench-gateway-%d", broker.URL, topic, runs)
		s := testenv.OpenStream(b, server.Client, &gateways.EventSource{Name: "bench", Data: data})
		waitSubscribed(b, broker, topic)
		b.ResetTimer()
		w := publishing(topic, b.N)
		testenv.ConsumeStream(b, s, w.Credit)
		b.StopTimer()
		if err := w.Wait(); err != nil {
			b.Fatal(err)
		}
		s.Close()
	})

	b.Run("gateway-acked", func(b *testing.B) {
		runs++
		topic := fmt.Sprintf("bench/acked/%d", runs)
		server := testenv.StartGateway(b, &gateway{})
		data := fmt.Sprintf("url: %s\ntopic: %s\nclientId: bench-acked-%d", broker.URL, topic, runs)
		s := testenv.OpenAckedStream(b, server.Client, &gateways.EventSource{Name: "bench", Data: data}, 0)
		waitSubscribed(b, broker, topic)
		b.ResetTimer()
		w := publishing(topic, b.N)
		for range b.N {
			s.Ack(b, gateways.Ack_OUTCOME_DELIVERED, s.Next(b, time.Minute).GetSeq())
			w.Credit()
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		b.StopTimer()
		if err := w.Wait(); err != nil {
			b.Fatal(err)
		}
		s.Close()
	})
}
