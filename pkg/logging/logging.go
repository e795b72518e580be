// Package logging builds the structured log/slog logger every eventgate process uses, set
// from LOG_LEVEL (debug, info, warn, error) and LOG_FORMAT (text or json).
package logging

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// Environment variables read by FromEnv.
const (
	EnvLevel  = "LOG_LEVEL"
	EnvFormat = "LOG_FORMAT"
)

// New returns a logger writing to w. format is "text" (the default, for people) or "json"
// (for log collectors); level is a slog level name, info by default.
func New(w io.Writer, level, format string) (*slog.Logger, error) {
	var lvl slog.Level
	if level != "" {
		if err := lvl.UnmarshalText([]byte(level)); err != nil {
			return nil, fmt.Errorf("%s: %q is not one of debug, info, warn, error", EnvLevel, level)
		}
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch strings.ToLower(format) {
	case "", "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	default:
		return nil, fmt.Errorf("%s: %q is not text or json", EnvFormat, format)
	}
}

// FromEnv is New with the level and format read through getenv (os.Getenv in production).
func FromEnv(w io.Writer, getenv func(string) string) (*slog.Logger, error) {
	return New(w, getenv(EnvLevel), getenv(EnvFormat))
}
