package main

import (
	"errors"
	"flag"
	"io"
	"strings"
	"testing"

	"github.com/eventgate/eventgate/pkg/sensorsink"
)

func TestParseConfig(t *testing.T) {
	defaults := config{
		endpoints: sensorsink.Endpoints{HTTP: "127.0.0.1:9300"},
		format:    sensorsink.FormatPretty,
		mode:      sensorsink.ModeOK,
	}
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want config
	}{
		{name: "defaults: v0.10's sensor port", want: defaults},
		{
			name: "flags",
			args: []string{"--http", "0.0.0.0:9400", "--nats-url", "nats://127.0.0.1:4222", "--nats-subject", "events",
				"--output", "json", "--mode", "stall", "--fail-first", "2"},
			want: config{
				endpoints: sensorsink.Endpoints{HTTP: "0.0.0.0:9400", NATSURL: "nats://127.0.0.1:4222", NATSSubject: "events"},
				format:    sensorsink.FormatJSON, mode: sensorsink.ModeStall, failFirst: 2,
			},
		},
		{
			name: "environment",
			env: map[string]string{"SENSOR_HTTP": "127.0.0.1:9301", "SENSOR_OUTPUT": "json", "SENSOR_MODE": "fail",
				"SENSOR_FAIL_FIRST": "1"},
			want: config{endpoints: sensorsink.Endpoints{HTTP: "127.0.0.1:9301"}, format: sensorsink.FormatJSON,
				mode: sensorsink.ModeFail, failFirst: 1},
		},
		{
			name: "a flag beats its variable",
			args: []string{"-mode=ok"},
			env:  map[string]string{"SENSOR_MODE": "broken"},
			want: defaults,
		},
		{
			name: "an empty address turns HTTP off",
			args: []string{"--http=", "--nats-url", "nats://n:4222", "--nats-subject", "s"},
			want: config{endpoints: sensorsink.Endpoints{NATSURL: "nats://n:4222", NATSSubject: "s"},
				format: sensorsink.FormatPretty, mode: sensorsink.ModeOK},
		},
		{
			name: "so does an empty variable",
			env:  map[string]string{"SENSOR_HTTP": "", "SENSOR_NATS_URL": "nats://n:4222", "SENSOR_NATS_SUBJECT": "s"},
			want: config{endpoints: sensorsink.Endpoints{NATSURL: "nats://n:4222", NATSSubject: "s"},
				format: sensorsink.FormatPretty, mode: sensorsink.ModeOK},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseConfig(tc.args, lookup(tc.env), io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestParseConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{
			name: "bad values, each named by the flag it came from",
			args: []string{"--output", "yaml", "--mode", "maybe", "--fail-first", "x", "--http", "9300"},
			want: `--output: "yaml" is not pretty or json` + "\n" + `--mode: "maybe" is not ok, fail or stall` + "\n" +
				`--fail-first: "x" is not a count` + "\n" + `--http: "9300" is not host:port`,
		},
		{
			name: "or by the variable",
			env:  map[string]string{"SENSOR_MODE": "maybe", "SENSOR_FAIL_FIRST": "-2"},
			want: `SENSOR_MODE: "maybe" is not ok, fail or stall` + "\n" + `SENSOR_FAIL_FIRST: "-2" is not a count`,
		},
		{name: "NATS URL without subject", args: []string{"--nats-url", "nats://n"}, want: "--nats-subject: required with a NATS URL"},
		{name: "subject without NATS URL", args: []string{"--nats-subject", "s"}, want: `--nats-url: required with a NATS subject ("s")`},
		{name: "nothing to listen on", args: []string{"--http", ""}, want: "--http: empty and no NATS URL either: nothing to listen on"},
		{name: "unknown flag", args: []string{"--port", "9300"}, want: "flag provided but not defined: -port"},
		{name: "positional arguments", args: []string{"9300"}, want: `unexpected arguments ["9300"]: every setting is a flag`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseConfig(tc.args, lookup(tc.env), io.Discard)
			if err == nil || err.Error() != tc.want {
				t.Errorf("got %v\nwant %s", err, tc.want)
			}
		})
	}
}

func TestParseConfigHelp(t *testing.T) {
	var usage strings.Builder
	_, err := parseConfig([]string{"-h"}, lookup(nil), &usage)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("got %v, want flag.ErrHelp", err)
	}
	for _, want := range []string{"-http", "SENSOR_HTTP", "-nats-url", "-nats-subject", "-output", "-mode", "-fail-first"} {
		if !strings.Contains(usage.String(), want) {
			t.Errorf("usage does not mention %s:\n%s", want, usage.String())
		}
	}
}

func lookup(env map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	}
}
