package config

import (
	"math"
	"strings"
	"testing"
	"time"
)

func TestBackoffDecode(t *testing.T) {
	tests := []struct {
		name, data string
		want       time.Duration
		wantErr    string
	}{
		{name: "v0.10 integer nanoseconds", data: "duration: 10000000000", want: 10 * time.Second},
		{name: "Go duration string", data: "duration: 1m30s", want: 90 * time.Second},
		{name: "quoted nanoseconds", data: `duration: "500"`, want: 500},
		{name: "not a duration", data: "duration: soon", wantErr: `"soon" is not a duration`},
		{name: "fraction of a nanosecond", data: "duration: 1.5", wantErr: "1.5 is not a duration"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var b Backoff
			err := Decode("b", tc.data, &b)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Decode error = %v, want it to contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if time.Duration(b.Duration) != tc.want {
				t.Errorf("duration = %s, want %s", time.Duration(b.Duration), tc.want)
			}
		})
	}
}

func TestBackoffValidate(t *testing.T) {
	tests := []struct {
		name    string
		b       Backoff
		wantErr string // "": valid
	}{
		{name: "valid", b: Backoff{Duration: Duration(time.Second), Factor: 1.5, Jitter: 0.1, Steps: 5}},
		{name: "empty: the defaults", b: Backoff{}},
		{name: "factor 1: a constant wait", b: Backoff{Factor: 1}},
		{name: "jitter 1: up to twice the wait", b: Backoff{Jitter: 1}},
		{
			name: "negative", b: Backoff{Duration: -1, Factor: -2, Jitter: -0.5, Steps: -3},
			wantErr: "nats.backoff.duration: must not be negative, got -1ns; nats.backoff.factor: must not be negative, got -2; " +
				"nats.backoff.jitter: must not be negative, got -0.5; nats.backoff.steps: must not be negative, got -3",
		},
		{
			name: "factor below 1", b: Backoff{Factor: 0.5},
			wantErr: "nats.backoff.factor: must be at least 1 (or 0: the default, 2), got 0.5: below 1 the wait would shrink at each failed attempt",
		},
		{
			name: "factor just below 1", b: Backoff{Factor: 0.999},
			wantErr: "nats.backoff.factor: must be at least 1 (or 0: the default, 2), got 0.999",
		},
		{name: "factor NaN", b: Backoff{Factor: math.NaN()}, wantErr: "nats.backoff.factor: must be a number, got NaN"},
		{name: "factor infinite", b: Backoff{Factor: math.Inf(1)}, wantErr: "nats.backoff.factor: must be a number, got +Inf"},
		{
			name: "jitter above 1", b: Backoff{Jitter: 1.5},
			wantErr: "nats.backoff.jitter: must be at most 1 (the wait plus up to as much again at random), got 1.5",
		},
		{name: "huge jitter", b: Backoff{Jitter: 1e300}, wantErr: "nats.backoff.jitter: must be at most 1 (the wait plus up to as much again at random), got 1e+300"},
		{name: "jitter NaN", b: Backoff{Jitter: math.NaN()}, wantErr: "nats.backoff.jitter: must be a number, got NaN"},
		{
			name: "factor and jitter", b: Backoff{Factor: 0.1, Jitter: 2},
			wantErr: "nats.backoff.factor: must be at least 1 (or 0: the default, 2), got 0.1: below 1 the wait would shrink at each failed attempt; " +
				"nats.backoff.jitter: must be at most 1 (the wait plus up to as much again at random), got 2",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var errs Errors
			tc.b.Validate(&errs, "nats.backoff")
			err := errs.Err()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("Validate = %v, want valid", err)
			case tc.wantErr != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.wantErr)):
				t.Errorf("Validate = %v\nwant %s", err, tc.wantErr)
			}
		})
	}
}

func TestBackoffDelay(t *testing.T) {
	tests := []struct {
		name    string
		b       Backoff
		attempt int
		want    time.Duration
	}{
		{name: "defaults", b: Backoff{}, attempt: 0, want: DefaultBackoffDuration},
		{name: "defaults grow", b: Backoff{}, attempt: 3, want: 8 * DefaultBackoffDuration},
		{name: "factor", b: Backoff{Duration: Duration(time.Second), Factor: 3}, attempt: 2, want: 9 * time.Second},
		{name: "steps stop the growth", b: Backoff{Duration: Duration(time.Second), Factor: 2, Steps: 2}, attempt: 10, want: 4 * time.Second},
		{name: "capped", b: Backoff{Duration: Duration(time.Second), Factor: 10}, attempt: 50, want: MaxBackoffDelay},
		{name: "factor 1: constant", b: Backoff{Duration: Duration(time.Second), Factor: 1}, attempt: 1000, want: time.Second},
		// Values Validate refuses: never below the first wait, never beyond the cap.
		{name: "factor below 1: the first wait", b: Backoff{Duration: Duration(time.Second), Factor: 0.5}, attempt: 30, want: time.Second},
		{name: "factor near 0: the first wait", b: Backoff{Duration: Duration(time.Second), Factor: 1e-300}, attempt: 3, want: time.Second},
		{name: "negative factor: the first wait", b: Backoff{Duration: Duration(time.Second), Factor: -2}, attempt: 3, want: time.Second},
		{name: "factor NaN: the first wait", b: Backoff{Duration: Duration(time.Second), Factor: math.NaN()}, attempt: 3, want: time.Second},
		{name: "infinite factor: capped", b: Backoff{Duration: Duration(time.Second), Factor: math.Inf(1)}, attempt: 1, want: MaxBackoffDelay},
		{name: "negative duration: the default", b: Backoff{Duration: -5}, attempt: 0, want: DefaultBackoffDuration},
		{name: "longest duration: capped", b: Backoff{Duration: math.MaxInt64}, attempt: 0, want: MaxBackoffDelay},
		{name: "longest duration grown: capped", b: Backoff{Duration: math.MaxInt64, Factor: 1e300}, attempt: 10, want: MaxBackoffDelay},
		{name: "most attempts: capped", b: Backoff{}, attempt: math.MaxInt, want: MaxBackoffDelay},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.b.Delay(tc.attempt); got != tc.want {
				t.Errorf("Delay(%d) = %s, want %s", tc.attempt, got, tc.want)
			}
		})
	}
	jittered := []struct {
		name     string
		b        Backoff
		attempt  int
		min, max time.Duration
	}{
		{name: "jitter", b: Backoff{Duration: Duration(time.Second), Jitter: 0.5}, min: time.Second, max: 1500 * time.Millisecond},
		{name: "jitter 1 at the cap", b: Backoff{Duration: Duration(time.Second), Jitter: 1}, attempt: 100, min: MaxBackoffDelay, max: 2 * MaxBackoffDelay},
		// Values Validate refuses: a jitter above 1 is taken as 1, and cannot overflow.
		{name: "jitter above 1", b: Backoff{Duration: Duration(time.Second), Jitter: 5}, min: time.Second, max: 2 * time.Second},
		{name: "huge jitter", b: Backoff{Duration: Duration(time.Second), Jitter: 1e300}, min: time.Second, max: 2 * time.Second},
		{name: "huge jitter at the cap", b: Backoff{Duration: math.MaxInt64, Jitter: math.MaxFloat64}, attempt: 5, min: MaxBackoffDelay, max: 2 * MaxBackoffDelay},
		{name: "infinite jitter", b: Backoff{Duration: Duration(time.Second), Jitter: math.Inf(1)}, min: time.Second, max: 2 * time.Second},
		{name: "jitter NaN: none", b: Backoff{Duration: Duration(time.Second), Jitter: math.NaN()}, min: time.Second, max: time.Second},
	}
	for _, tc := range jittered {
		t.Run(tc.name, func(t *testing.T) {
			for range 100 {
				if d := tc.b.Delay(tc.attempt); d < tc.min || d > tc.max {
					t.Fatalf("Delay(%d) = %s, outside [%s, %s]", tc.attempt, d, tc.min, tc.max)
				}
			}
		})
	}
}
