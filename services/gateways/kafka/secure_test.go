package main

import (
	"crypto/tls"
	"fmt"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/eventgate/eventgate/pkg/config"
	"github.com/eventgate/eventgate/pkg/testenv"
	"github.com/eventgate/eventgate/protos/gateways"
)

// A broker that wants TLS and SASL/PLAIN: the right credentials deliver, wrong ones keep
// the source retrying (the stream stays open) instead of failing it for good.
func TestTLSAndSASL(t *testing.T) {
	cert, caFile := testenv.LoopbackCert(t)
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "secure"),
		kfake.TLS(&tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}),
		kfake.EnableSASL(), kfake.Superuser("PLAIN", "gateway", "s3cret"))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	addr := cluster.ListenAddrs()[0]
	source := func(password string) string {
		return fmt.Sprintf("url: %s\ntopic: secure\nbackoff: {duration: 100ms, factor: 1}\ntls: {caCertPath: %s}\nsasl: {username: gateway, password: %s}\nconsumerGroup: {groupName: g-%s, oldest: true}",
			addr, caFile, password, password)
	}

	produceAs(t, &Config{TLS: mustTLS(caFile), SASL: &SASL{Username: "gateway", Password: "s3cret"}}, addr, "secure", "classified")

	gw := testenv.StartGateway(t, gateway{})
	good := testenv.OpenStream(t, gw.Client, &gateways.EventSource{Name: "good", Data: source("s3cret")})
	if r := decode(t, good.Next(t, 30*time.Second)); string(r.bytes(t)) != "classified" {
		t.Errorf("got %q", r.bytes(t))
	}
	bad := testenv.OpenStream(t, gw.Client, &gateways.EventSource{Name: "bad", Data: source("wrong")})
	if ev, err := bad.TryNext(time.Second); err != testenv.ErrNoEvent {
		t.Errorf("with a wrong password: event %v, error %v; want no event and an open stream", ev, err)
	}
}

func mustTLS(caFile string) *config.TLS { return &config.TLS{CACertPath: caFile} }

// produceAs writes value to topic on the broker at addr, connecting with cfg's TLS and SASL.
func produceAs(t testing.TB, cfg *Config, addr, topic, value string) {
	t.Helper()
	sc, err := cfg.saramaConfig()
	if err != nil {
		t.Fatal(err)
	}
	sc.Producer.Return.Successes = true
	producer, err := sarama.NewSyncProducer([]string{addr}, sc)
	if err != nil {
		t.Fatalf("producer: %v", err)
	}
	defer producer.Close()
	if _, _, err := producer.SendMessage(&sarama.ProducerMessage{Topic: topic, Value: sarama.StringEncoder(value)}); err != nil {
		t.Fatal(err)
	}
}
