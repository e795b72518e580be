package main

import (
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/eventgate/eventgate/pkg/secret"
	"github.com/eventgate/eventgate/pkg/testenv"
	"github.com/eventgate/eventgate/pkg/testenv/amqpenv"
	"github.com/eventgate/eventgate/protos/gateways"
)

// The password of the URL's user in a secret: missing, then wrong (the broker refuses it),
// then right. Each failure is retried with the backoff, the secret's file is read again at
// each attempt, and the wrong value is never logged. The test broker's user is RabbitMQ's
// guest, whose password is its name, so only the wrong one can be looked for.
func TestPasswordSecret(t *testing.T) {
	const wrong = "wr0ng-amqp-pa55word"
	b := amqpenv.Start(t)
	u, err := url.Parse(b.URL)
	if err != nil {
		t.Fatal(err)
	}
	good, _ := u.User.Password()
	u.User = url.User(u.User.Username())
	exchange, _ := names(t)

	dir := testenv.NewSecretsDir(t)
	logs, logTo := testenv.CaptureLogs(t)
	gw := testenv.StartGateway(t, gateway{secrets: secret.Dir(dir)}, logTo)
	s := testenv.OpenStream(t, gw.Client, &gateways.EventSource{Name: "auth", Data: fmt.Sprintf(
		"url: %s\nexchangeName: %s\nexchangeType: topic\nroutingKey: auth.*\npasswordSecret: {name: amqp-creds, key: password}\nbackoff: {duration: 50ms, factor: 1}", u, exchange)})

	testenv.WaitLogged(t, logs, "amqp.passwordSecret: secret amqp-creds/password: no file amqp-creds/password in "+string(dir), 2, 10*time.Second)
	dir.Put(t, "amqp-creds", "password", wrong)
	testenv.WaitLogged(t, logs, "connect to "+u.String()+": Exception (403) Reason: \\\"username or password not allowed\\\"", 2, 30*time.Second)
	dir.Put(t, "amqp-creds", "password", good)
	waitConsuming(t, b.URL, exchange, "auth.probe", s)
	publish(t, b.URL, exchange, "auth.created", texts(false, "m0", "end")...)
	if got, _ := readUntil(t, s, "end"); len(got) != 1 || got[0] != "m0" {
		t.Errorf("got %v, want [m0]", got)
	}
	testenv.ExpectNotShown(t, "the gateway's log", logs.String(), wrong)
}
