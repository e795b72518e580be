package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/eventgate/eventgate/pkg/testenv"
	"github.com/eventgate/eventgate/protos/gateways"
)

func TestStartPrintsCountEvents(t *testing.T) {
	gw := testenv.StartGateway(t, &probeGateway{})
	data := probeData(t, probeConfig{Events: 5, Text: "{\"hello\": \"world\"}", ContentType: "application/json"})
	got := gwcat(t, "", "start", "--addr", gw.Addr, "--data", data, "--name", "src", "--count", "3")
	if got.code != exitOK || got.stderr != "" {
		t.Fatalf("gwcat start = exit %d, stderr %q", got.code, got.stderr)
	}
	var want []string
	for i := range 3 {
		want = append(want, fmt.Sprintf(`{"name":"src","id":"ev-%d","time":"2026-01-02T03:04:0%d.123456789Z","contentType":"application/json","metadata":{"seq":"%d"},"payload":{"hello":"world"}}`, i, 5+i, i))
	}
	if got := lines(got.stdout); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("stdout:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestStartRendersPayloads(t *testing.T) {
	gw := testenv.StartGateway(t, &probeGateway{})
	const head = `{"name":"p","id":"ev-0","time":"2026-01-02T03:04:05.123456789Z","metadata":{"seq":"0"},`
	tests := []struct {
		name string
		cfg  probeConfig
		want string // the line's payload field
	}{
		{"JSON object, compacted", probeConfig{Text: "{ \"a\": [1, 2],\n  \"b\": \"<x> & y\" }\n"}, `"payload":{"a":[1,2],"b":"<x> & y"}`},
		{"JSON string", probeConfig{Text: `"hi"`}, `"payload":"hi"`},
		{"JSON number", probeConfig{Text: "42"}, `"payload":42`},
		{"text", probeConfig{Text: "hello <world> & \"co\"\n"}, `"payloadText":"hello <world> & \"co\"\n"`},
		{"almost JSON is text", probeConfig{Text: `{"a": 1`}, `"payloadText":"{\"a\": 1"`},
		{"empty", probeConfig{}, `"payloadText":""`},
		{"binary", probeConfig{Base64: "/wD+"}, `"payloadBase64":"/wD+"`},
		{"Latin-1 text is not UTF-8", probeConfig{Base64: "Y2Fm6Q=="}, `"payloadBase64":"Y2Fm6Q=="`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Events = 1
			got := gwcat(t, "", "start", "--addr", gw.Addr, "--data", probeData(t, tc.cfg), "--name", "p", "--count", "1")
			if want := head + tc.want + "}\n"; got != (result{exitOK, want, ""}) {
				t.Errorf("gwcat start = %+v\nwant stdout %s", got, want)
			}
		})
	}
}

// A v0.10 gateway sends only name and payload; the fields it lacks are left out.
func TestPrintV010Event(t *testing.T) {
	var out strings.Builder
	if err := printEvent(&out, &gateways.Event{Name: "old", Payload: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	if want := `{"name":"old","payloadText":"x"}` + "\n"; out.String() != want {
		t.Errorf("printed %s, want %s", out.String(), want)
	}
}

func TestStartEnds(t *testing.T) {
	gw := testenv.StartGateway(t, &probeGateway{})
	tests := []struct {
		name   string
		cfg    probeConfig
		flags  []string
		code   int
		events int
		stderr string
	}{
		{name: "server ends before --count", cfg: probeConfig{Events: 1, End: true}, flags: []string{"--count", "3"},
			code: exitFailed, events: 1, stderr: "gwcat start: the server ended the stream after 1 of 3 events\n"},
		{name: "server ends, no --count", cfg: probeConfig{Events: 2, End: true},
			code: exitOK, events: 2, stderr: "gwcat start: the server ended the stream after 2 events\n"},
		{name: "source fails", cfg: probeConfig{Events: 1, Fail: "broker gone"}, flags: []string{"--count", "3"},
			code: exitFailed, events: 1, stderr: "gwcat start: stream failed after 1 events: StartEventSource on " + gw.Addr + ": Unavailable: event source \"gwcat\" failed: broker gone\n"},
		{name: "invalid, validated first", cfg: probeConfig{Events: -1},
			code: exitFailed, stderr: "invalid: probe.events: must not be negative, got -1\n"},
		{name: "invalid, not validated: the stream says why", cfg: probeConfig{Events: -1}, flags: []string{"--validate=false"},
			code: exitFailed, stderr: "invalid: probe.events: must not be negative, got -1\n"},
		{name: "--timeout ends an open-ended run", cfg: probeConfig{Events: 1}, flags: []string{"--timeout", "500ms"},
			code: exitOK, events: 1},
		{name: "--timeout before --count", cfg: probeConfig{Events: 1}, flags: []string{"--timeout", "500ms", "--count", "3"},
			code: exitFailed, events: 1, stderr: "gwcat start: --timeout 500ms reached after 1 of 3 events\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"start", "--addr", gw.Addr, "--data", probeData(t, tc.cfg)}, tc.flags...)
			got := gwcat(t, "", args...)
			if got.code != tc.code || len(lines(got.stdout)) != tc.events || got.stderr != tc.stderr {
				t.Errorf("gwcat %s = exit %d, %d events, stderr %q; want exit %d, %d events, stderr %q",
					strings.Join(args, " "), got.code, len(lines(got.stdout)), got.stderr, tc.code, tc.events, tc.stderr)
			}
		})
	}
}

// SIGINT/SIGTERM cancel run's context (see main): the call is cancelled, the server stops
// the source, and gwcat exits 0 with the events so far.
func TestStartStopsCleanlyOnInterrupt(t *testing.T) {
	g := &probeGateway{}
	gw := testenv.StartGateway(t, g)
	ctx, interrupt := context.WithCancel(t.Context())
	defer interrupt()
	var stdout, stderr testenv.SyncBuffer
	exit := make(chan int, 1)
	go func() {
		exit <- run(ctx, []string{"start", "--addr", gw.Addr, "--data", "events: 1"}, strings.NewReader(""), &stdout, &stderr)
	}()
	testenv.Eventually(t, 10*time.Second, 5*time.Millisecond, func() error {
		if n := len(lines(stdout.String())); n != 1 {
			return fmt.Errorf("%d events printed, want 1", n)
		}
		return nil
	})
	interrupt()
	select {
	case code := <-exit:
		if code != exitOK || stderr.String() != "" {
			t.Fatalf("interrupted gwcat start = exit %d, stderr %q; want 0 and nothing", code, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("gwcat start did not end within 10s of the interrupt")
	}
	testenv.Eventually(t, 10*time.Second, 5*time.Millisecond, func() error {
		if n := g.running.Load(); n != 0 {
			return fmt.Errorf("%d sources still running on the server", n)
		}
		return nil
	})
}
