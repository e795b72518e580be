package main

import (
	"fmt"
	"testing"
	"time"

	"github.com/eventgate/eventgate/pkg/secret"
	"github.com/eventgate/eventgate/pkg/testenv"
	"github.com/eventgate/eventgate/pkg/testenv/mqttenv"
)

// A password in a secret: missing, then wrong (the broker refuses it), then right. Each
// failure is retried with the backoff, the secret's file is read again at each attempt, and
// no value is ever logged.
func TestPasswordSecret(t *testing.T) {
	const good, wrong = "g00d-mqtt-pa55word", "wr0ng-mqtt-pa55word"
	broker := mqttenv.Start(t, mqttenv.WithUser("gateway", good))
	dir := testenv.NewSecretsDir(t)
	logs, logTo := testenv.CaptureLogs(t)
	gw := testenv.StartGateway(t, &gateway{secrets: secret.Dir(dir)}, logTo)
	ch := events(t, gw, fmt.Sprintf("url: %s\ntopic: auth\nusername: gateway\npasswordSecret: {name: mqtt-creds, key: password}\n%s", broker.URL, fastBackoff))

	testenv.WaitLogged(t, logs, "mqtt.passwordSecret: secret mqtt-creds/password: no file mqtt-creds/password in "+string(dir), 2, 10*time.Second)
	dir.Put(t, "mqtt-creds", "password", wrong)
	testenv.WaitLogged(t, logs, "connect to "+broker.URL+": not Authorized", 2, 10*time.Second)
	dir.Put(t, "mqtt-creds", "password", good)
	waitSubscribed(t, broker, "auth")
	publish(t, broker, "auth", "m", 3, 1)
	expect(t, ch, "auth", "m", 3)
	testenv.ExpectNotShown(t, "the gateway's log", logs.String(), good, wrong)
}
