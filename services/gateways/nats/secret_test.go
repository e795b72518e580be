package main

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/eventgate/eventgate/pkg/secret"
	"github.com/eventgate/eventgate/pkg/testenv"
	"github.com/eventgate/eventgate/pkg/testenv/kubeenv"
	"github.com/eventgate/eventgate/pkg/testenv/natsenv"
	"github.com/eventgate/eventgate/protos/gateways"
)

// runAsGateway makes this test binary the NATS gateway process when a test re-executes it:
// main runs as it does in a pod, with the environment the test gives it.
const runAsGateway = "EVENTGATE_TEST_RUN_AS_NATS_GATEWAY"

func TestMain(m *testing.M) { os.Exit(testenv.MainOrTests(m, runAsGateway, main, kubeenv.Run)) }

// testExecutable is this test binary, which runs main with runAsGateway=1.
func testExecutable(t testing.TB) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return exe
}

// A source whose credential is in a secret: a missing secret is an error that names it and
// is retried with the backoff, and the source connects once the secret's file appears.
func TestSecretReferences(t *testing.T) {
	const value = "s3cret-from-the-folder"
	tests := []struct {
		name   string
		server natsserver.Options
		source string
		field  string
	}{
		{name: "token", server: natsserver.Options{Authorization: value}, source: "tokenSecret: {name: nats-creds, key: token}", field: "nats.tokenSecret: secret nats-creds/token"},
		{name: "username and password", server: natsserver.Options{Username: "gw", Password: value}, source: "username: gw\npasswordSecret: {name: nats-creds, key: password}", field: "nats.passwordSecret: secret nats-creds/password"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opts := tc.server
			opts.Port = -1
			ns := natsenv.StartServer(t, &opts)
			dir := testenv.NewSecretsDir(t)
			gw := newGateway()
			gw.secrets = secret.Dir(dir)
			logs, logTo := testenv.CaptureLogs(t)
			srv := testenv.StartGateway(t, gw, logTo)
			ch := events(t, srv, fmt.Sprintf("url: %s\nsubject: auth\n%s\n%s", ns.ClientURL(), tc.source, fastBackoff))

			key := tc.field[strings.LastIndex(tc.field, "/")+1:]
			testenv.WaitLogged(t, logs, tc.field+": no file nats-creds/"+key+" in "+string(dir), 2, 10*time.Second)
			dir.Put(t, "nats-creds", key, value)
			nc := connect(t, ns.ClientURL(), nats.Token(opts.Authorization), nats.UserInfo(opts.Username, opts.Password))
			waitSubscribed(t, nc, ch, "auth")
			publish(t, nc, "auth", "m", 3)
			expect(t, ch, "auth", "m", 3)
			testenv.ExpectNotShown(t, "the gateway's log", logs.String(), value)
		})
	}
}

// The gateway as a process, as in a pod: its secret comes from GATEWAY_SECRETS_DIR. One
// source has the right password, one a wrong one (the broker refuses it), one a secret
// that is missing; nothing the process writes, nor any error on its streams, shows either
// password.
func TestSecretValuesNeverShown(t *testing.T) {
	const good, wrong = "g00d-pa55word-value", "wr0ng-pa55word-value"
	ns := natsenv.StartServer(t, &natsserver.Options{Port: -1, Username: "gw", Password: good})
	dir := testenv.NewSecretsDir(t)
	dir.Put(t, "good", "password", good)
	dir.Put(t, "wrong", "password", wrong)
	gw, proc := testenv.StartGatewayProcess(t, testExecutable(t), nil, runAsGateway+"=1", secret.EnvDir+"="+string(dir), "LOG_LEVEL=debug", "GATEWAY_NAMESPACE=argo-events")

	source := func(name string) *testenv.Stream {
		return testenv.OpenBufferedStream(t, gw.Client, &gateways.EventSource{Name: name, Data: fmt.Sprintf(
			"url: %s\nsubject: s\nusername: gw\npasswordSecret: {name: %s, key: password}\nbackoff: {duration: 50ms, factor: 1}", ns.ClientURL(), name)}, 64)
	}
	streams := map[string]*testenv.Stream{"good": source("good"), "wrong": source("wrong"), "missing": source("missing")}
	nc := connect(t, ns.ClientURL(), nats.UserInfo("gw", good))
	waitSubscribed(t, nc, streams["good"], "s")
	testenv.WaitLogged(t, proc.Output, "connect to NATS: nats: Authorization Violation", 2, 20*time.Second)
	testenv.WaitLogged(t, proc.Output, "nats.passwordSecret: secret missing/password: no file missing/password", 2, 20*time.Second)
	resp, err := gw.Client.ValidateEventSource(t.Context(), &gateways.EventSource{Name: "bad", Data: "url: nats://x\nsubject: s\npassword: p\npasswordSecret: {name: good, key: password}"})
	if err != nil || resp.GetIsValid() {
		t.Fatalf("ValidateEventSource = %v, %v; want invalid", resp, err)
	}

	if err := gw.Stop(); err != nil {
		t.Errorf("gateway process: %v", err)
	}
	var seen strings.Builder
	fmt.Fprintf(&seen, "validation: %s\n", resp.GetReason())
	for name, s := range streams {
		<-s.Ended()
		fmt.Fprintf(&seen, "stream %s: %v\n", name, s.Err())
	}
	testenv.ExpectNotShown(t, "the gateway process's output", proc.Output.String(), good, wrong)
	testenv.ExpectNotShown(t, "the streams' and validation's errors", seen.String(), good, wrong)
	if t.Failed() || testing.Verbose() {
		t.Logf("output:\n%s\n%s", proc.Output, seen.String())
	}
}
