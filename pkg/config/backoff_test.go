package config

import (
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
	var errs Errors
	Backoff{Duration: -1, Factor: -2, Jitter: -0.5, Steps: -3}.Validate(&errs, "nats.backoff")
	want := "nats.backoff.duration: must not be negative, got -1ns; nats.backoff.factor: must not be negative, got -2; " +
		"nats.backoff.jitter: must not be negative, got -0.5; nats.backoff.steps: must not be negative, got -3"
	if err := errs.Err(); err == nil || err.Error() != want {
		t.Errorf("Validate = %v\nwant %s", err, want)
	}
	var none Errors
	Backoff{Duration: Duration(time.Second), Factor: 1.5, Jitter: 0.1, Steps: 5}.Validate(&none, "nats.backoff")
	if err := none.Err(); err != nil {
		t.Errorf("a valid backoff: %v", err)
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
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.b.Delay(tc.attempt); got != tc.want {
				t.Errorf("Delay(%d) = %s, want %s", tc.attempt, got, tc.want)
			}
		})
	}
	jittered := Backoff{Duration: Duration(time.Second), Jitter: 0.5}
	for range 100 {
		if d := jittered.Delay(0); d < time.Second || d > 1500*time.Millisecond {
			t.Fatalf("jittered delay %s outside [1s, 1.5s]", d)
		}
	}
}
