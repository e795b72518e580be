package program

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"testing"
)

func TestExecute(t *testing.T) {
	env := map[string]string{"LOG_LEVEL": "debug", "LOG_FORMAT": "json"}
	var stderr bytes.Buffer
	var gotArgs []string
	err := execute(context.Background(), "test", []string{"--x"}, func(k string) string { return env[k] }, &stderr, func(_ context.Context, args []string, log *slog.Logger) error {
		gotArgs = args
		log.Debug("hello")
		return nil
	})
	if err != nil || fmt.Sprint(gotArgs) != "[--x]" {
		t.Fatalf("err %v, args %v", err, gotArgs)
	}
	if !bytes.Contains(stderr.Bytes(), []byte(`"msg":"hello"`)) {
		t.Errorf("the logger ignores LOG_LEVEL/LOG_FORMAT: %q", stderr.String())
	}

	env["LOG_LEVEL"] = "loud"
	ran := false
	err = execute(context.Background(), "test", nil, func(k string) string { return env[k] }, &stderr, func(context.Context, []string, *slog.Logger) error {
		ran = true
		return nil
	})
	if err == nil || ran {
		t.Errorf("a bad LOG_LEVEL: err %v, ran %v; want an error before the command runs", err, ran)
	}
}

func TestExitCode(t *testing.T) {
	for _, tc := range []struct {
		err    error
		code   int
		stderr string
	}{
		{nil, 0, ""},
		{fmt.Errorf("parse: %w", flag.ErrHelp), 0, ""},
		{errors.New("boom"), 1, "cmd: boom\n"},
	} {
		var stderr bytes.Buffer
		if code := exitCode("cmd", tc.err, &stderr); code != tc.code || stderr.String() != tc.stderr {
			t.Errorf("%v: exit %d, stderr %q; want %d, %q", tc.err, code, stderr.String(), tc.code, tc.stderr)
		}
	}
}
