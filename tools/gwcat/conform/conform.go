// Package conform is the gateway conformance kit: checks that a gateway server, in any
// language, behaves on the Eventing contract as the gateway-client relies on. gwcat conform
// runs it against an address; tests run it in-process.
package conform

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/eventgate/eventgate/protos/gateways"
)

// Status is a check's outcome.
type Status int

const (
	Pass Status = iota
	Warn        // allowed: the server works, but misses something recommended
	Fail
)

func (s Status) String() string {
	switch s {
	case Pass:
		return "PASS"
	case Warn:
		return "WARN"
	}
	return "FAIL"
}

// The checks, in the order Run runs them.
const (
	CheckValidateValid   = "validate-valid"   // ValidateEventSource accepts the valid source
	CheckValidateInvalid = "validate-invalid" // ... and refuses the invalid one with a reason
	CheckStartValid      = "start-valid"      // the valid source streams events carrying its name
	CheckStartInvalid    = "start-invalid"    // the invalid source's stream ends with an error
	CheckCancel          = "cancel"           // a cancelled source can be started again at once
	CheckTwoSources      = "two-sources"      // two sources at once stay apart
	CheckHealth          = "health"           // grpc.health.v1 answers SERVING (warn if absent)
	CheckAckedDelivery   = "acked-delivery"   // StreamEventSource: window, acks in any order (warn if absent)
	CheckHalfClose       = "half-close"       // StreamEventSource: the client's half-close ends the call (warn if not)
	CheckBadAck          = "bad-ack"          // StreamEventSource: an ack without an outcome ends the call, InvalidArgument (warn if not)
	CheckSlowReader      = "slow-reader"      // a client that stops reading harms no one else
)

// Checks lists every check by name, in the order Run runs them: slow-reader last, as it
// may bring a fragile server down.
var Checks = []string{CheckValidateValid, CheckValidateInvalid, CheckStartValid, CheckStartInvalid,
	CheckCancel, CheckTwoSources, CheckHealth, CheckAckedDelivery, CheckHalfClose, CheckBadAck, CheckSlowReader}

// Result is one check's outcome and why.
type Result struct {
	Check  string
	Status Status
	Why    string
}

func (r Result) String() string { return fmt.Sprintf("%s %s: %s", r.Status, r.Check, r.Why) }

// Options say what to check and how.
type Options struct {
	// Conn reaches the gateway server.
	Conn *grpc.ClientConn
	// Dial, when set, opens a fresh connection to the same server: after a client stopped
	// reading, the kit asks on a connection of its own whether the server still answers.
	// Unset, it asks on Conn.
	Dial func(context.Context) (*grpc.ClientConn, error)
	// Valid and Invalid are event sources' YAML: one the gateway must accept and start, one
	// it must refuse.
	Valid, Invalid string
	// Valid2 is a second valid source, run beside Valid (two-sources, slow-reader), for
	// gateways where two sources of one config would collide (one webhook endpoint, one MQTT
	// client ID). Empty: Valid.
	Valid2 string
	// Name prefixes the event sources' names ("conform" when empty).
	Name string
	// Timeout bounds each wait of a check (an answer, the first event, a stream's end).
	Timeout time.Duration
	// Stall is how long the slow-reader check does not read its stream, and how long the
	// acked-delivery check waits, its window full, to see that no event comes.
	Stall time.Duration
	// Trigger, when set, makes the source es produce an event (a webhook call, a message
	// published to the broker). The kit calls it repeatedly while it waits for events of es;
	// gateways that produce events on their own (a schedule) need none.
	Trigger func(ctx context.Context, es *gateways.EventSource) error
	// TriggerEvery is the pause between Trigger calls (250ms when zero).
	TriggerEvery time.Duration
}

// Defaults of Options.
const (
	DefaultName    = "conform"
	DefaultTimeout = 10 * time.Second
	DefaultStall   = 2 * time.Second
)

func (o *Options) defaults() {
	if o.Name == "" {
		o.Name = DefaultName
	}
	if o.Valid2 == "" {
		o.Valid2 = o.Valid
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Stall <= 0 {
		o.Stall = DefaultStall
	}
	if o.TriggerEvery <= 0 {
		o.TriggerEvery = 250 * time.Millisecond
	}
}

// ErrNotGateway is Preflight's error for a gRPC server without the Eventing service.
var ErrNotGateway = errors.New("not a gateway server")

// Preflight tells apart a server that can be checked from one that is no gateway at all (it
// answers Unimplemented) or does not answer, so that those get one line instead of a list
// of failed checks.
func Preflight(ctx context.Context, opts Options) error {
	opts.defaults()
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	_, err := gateways.NewEventingClient(opts.Conn).ValidateEventSource(ctx, source(opts.Name, opts.Valid))
	switch code := status.Code(err); {
	case code == codes.Unimplemented:
		return fmt.Errorf("%w: it does not serve gateways.Eventing (%s)", ErrNotGateway, status.Convert(err).Message())
	case ctx.Err() != nil:
		return fmt.Errorf("ValidateEventSource: no answer within %s", opts.Timeout)
	case code == codes.Unavailable:
		return fmt.Errorf("ValidateEventSource: server unavailable: %s", status.Convert(err).Message())
	}
	return nil // any other answer, an error included, is for the checks to judge
}

// Run runs every check, one after the other, and returns their results in the order of
// Checks. Each wait of a check is bounded by opts.Timeout, so Run always returns.
func Run(ctx context.Context, opts Options) []Result {
	opts.defaults()
	k := &kit{opts: opts, client: gateways.NewEventingClient(opts.Conn)}
	checks := map[string]func(context.Context) (Status, string){
		CheckValidateValid:   k.validateValid,
		CheckValidateInvalid: k.validateInvalid,
		CheckStartValid:      k.startValid,
		CheckStartInvalid:    k.startInvalid,
		CheckCancel:          k.cancel,
		CheckTwoSources:      k.twoSources,
		CheckSlowReader:      k.slowReader,
		CheckHealth:          k.health,
		CheckAckedDelivery:   k.ackedDelivery,
		CheckHalfClose:       k.halfClose,
		CheckBadAck:          k.badAck,
	}
	results := make([]Result, 0, len(Checks))
	for _, name := range Checks {
		if ctx.Err() != nil {
			results = append(results, Result{name, Fail, "not run: interrupted"})
			continue
		}
		checkCtx, cancel := context.WithCancel(ctx)
		st, why := checks[name](checkCtx)
		cancel()
		results = append(results, Result{name, st, why})
	}
	return results
}

// Failed reports whether any result is a failure.
func Failed(results []Result) bool {
	for _, r := range results {
		if r.Status == Fail {
			return true
		}
	}
	return false
}

// source is the event source name with data, with the id a client computes (a hash of
// name and data).
func source(name, data string) *gateways.EventSource {
	sum := sha256.Sum256([]byte(name + data))
	return &gateways.EventSource{Id: hex.EncodeToString(sum[:]), Name: name, Data: data, Version: "v0.10"}
}

// describe says what a failed call answered.
func describe(err error) string {
	st := status.Convert(err)
	return fmt.Sprintf("%s: %s", st.Code(), st.Message())
}
