package main

import (
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/eventgate/eventgate/pkg/secret"
	"github.com/eventgate/eventgate/pkg/testenv"
	"github.com/eventgate/eventgate/protos/gateways"
)

// A SASL password in a secret: missing, then wrong (the broker refuses it), then right.
// Each failure is retried with the backoff, the secret's file is read again at each
// attempt, and no value is ever logged.
func TestSASLPasswordSecret(t *testing.T) {
	const good, wrong = "g00d-kafka-pa55word", "wr0ng-kafka-pa55word"
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "secret"),
		kfake.EnableSASL(), kfake.Superuser("PLAIN", "gateway", good))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	addr := cluster.ListenAddrs()[0]

	produceAs(t, &Config{SASL: &SASL{Username: "gateway", Password: good}}, addr, "secret", "classified")

	dir := testenv.NewSecretsDir(t)
	logs, logTo := testenv.CaptureLogs(t)
	gw := testenv.StartGateway(t, gateway{secrets: secret.Dir(dir)}, logTo)
	s := testenv.OpenStream(t, gw.Client, &gateways.EventSource{Name: "sasl", Data: fmt.Sprintf(
		"url: %s\ntopic: secret\nbackoff: {duration: 50ms, factor: 1}\nsasl: {username: gateway, passwordSecret: {name: kafka-creds, key: password}}\nconsumerGroup: {groupName: g, oldest: true}", addr)})

	testenv.WaitLogged(t, logs, "kafka.sasl.passwordSecret: secret kafka-creds/password: no file kafka-creds/password in "+string(dir), 2, 10*time.Second)
	dir.Put(t, "kafka-creds", "password", wrong)
	testenv.WaitLogged(t, logs, "connect to "+addr+": kafka: client has run out of available brokers", 2, 20*time.Second)
	dir.Put(t, "kafka-creds", "password", good)
	if r := decode(t, s.Next(t, 30*time.Second)); r.text(t) != "classified" {
		t.Errorf("got %q", r.text(t))
	}
	testenv.ExpectNotShown(t, "the gateway's log", logs.String(), good, wrong)
}
