package testenv

import (
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/eventgate/eventgate/protos/gateways"
)

// InvalidCase is an event source configuration a gateway must refuse, and how the refusal
// must read: its reason names Field (as "<Field>: ") when Field is set, and starts with
// Reason when Reason is set. At least one of the two is required.
type InvalidCase struct {
	Name, Data    string
	Field, Reason string
}

// ExpectInvalid checks, in a subtest per case, that the gateway server behind client
// refuses each case both ways a client meets it: ValidateEventSource answers
// is_valid=false with the reason, and StartEventSource ends with InvalidArgument and the
// same reason instead of starting a source.
func ExpectInvalid(t *testing.T, client gateways.EventingClient, cases []InvalidCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			if tc.Field == "" && tc.Reason == "" {
				t.Fatal("case with neither Field nor Reason: it would accept any refusal")
			}
			matches := func(reason string) bool {
				return (tc.Field == "" || strings.Contains(reason, tc.Field+": ")) &&
					(tc.Reason == "" || strings.HasPrefix(reason, tc.Reason))
			}
			es := &gateways.EventSource{Name: "bad", Data: tc.Data}
			resp, err := client.ValidateEventSource(t.Context(), es)
			if err != nil {
				t.Fatal(err)
			}
			if resp.GetIsValid() || !matches(resp.GetReason()) {
				t.Fatalf("validate = %v, want is_valid=false and a reason naming field %q, starting %q", resp, tc.Field, tc.Reason)
			}
			stream, err := client.StartEventSource(t.Context(), es)
			if err == nil {
				_, err = stream.Recv()
			}
			if st := status.Convert(err); st.Code() != codes.InvalidArgument || !matches(st.Message()) {
				t.Fatalf("start = %v, want InvalidArgument naming field %q, starting %q", err, tc.Field, tc.Reason)
			}
		})
	}
}
