package server_test

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/eventgate/eventgate/pkg/testenv"
	"github.com/eventgate/eventgate/protos/gateways"
)

// The v0.10 contract comes from testenv.NewV010, rebuilt from the published field list
// alone, not from our .proto: a peer speaking it must interoperate with ours both ways.

func TestV010ClientTalksToOurServer(t *testing.T) {
	v := testenv.NewV010(t)
	gw := testenv.StartGateway(t, &counterGateway{})

	reply := dynamicpb.NewMessage(v.ValidEventSource)
	err := gw.Conn.Invoke(t.Context(), "/gateways.Eventing/ValidateEventSource", v.NewEventSource("1", "bad", "count: -1"), reply)
	if err != nil {
		t.Fatal(err)
	}
	if testenv.V010Get(reply, "isValid").Bool() || testenv.V010Get(reply, "reason").String() != "counter.count: must not be negative, got -1" {
		t.Fatalf("v0.10 validate reply = %v", reply)
	}

	stream, err := gw.Conn.NewStream(t.Context(), &grpc.StreamDesc{ServerStreams: true}, "/gateways.Eventing/StartEventSource")
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.SendMsg(v.NewEventSource("2", "two", "count: 2\npayloadSize: 3")); err != nil {
		t.Fatal(err)
	}
	if err := stream.CloseSend(); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		ev := dynamicpb.NewMessage(v.Event)
		if err := stream.RecvMsg(ev); err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if testenv.V010Get(ev, "name").String() != "two" || len(testenv.V010Get(ev, "payload").Bytes()) != 3 {
			t.Errorf("v0.10 event %d = %v", i, ev)
		}
	}
}

func TestOurClientTalksToV010Server(t *testing.T) {
	var seen testenv.V010Source
	addr := testenv.StartV010Peer(t, testenv.V010Peer{
		Validate: func(src testenv.V010Source) (bool, string) {
			seen = src
			return false, "v0.10 says no"
		},
		Start: func(_ context.Context, _ testenv.V010Source, send func([]byte) error) error {
			return send([]byte(`{"from":"v0.10"}`))
		},
	})

	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := gateways.NewEventingClient(conn)

	es := &gateways.EventSource{Id: "abc", Name: "legacy", Data: "interval: 1s", Version: "v0.10"}
	valid, err := client.ValidateEventSource(t.Context(), es)
	if err != nil {
		t.Fatal(err)
	}
	if valid.GetIsValid() || valid.GetReason() != "v0.10 says no" {
		t.Errorf("validate reply = %v", valid)
	}
	if want := (testenv.V010Source{ID: "abc", Name: "legacy", Data: "interval: 1s", Version: "v0.10"}); seen != want {
		t.Errorf("v0.10 server saw %+v, want %+v", seen, want)
	}

	stream, err := client.StartEventSource(t.Context(), es)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if ev.GetName() != "legacy" || string(ev.GetPayload()) != `{"from":"v0.10"}` || ev.GetId() != "" {
		t.Errorf("event from v0.10 server = %v", ev)
	}

	// Acknowledged delivery is a new RPC that a v0.10 server does not know: our client
	// learns that from UNIMPLEMENTED and falls back to StartEventSource (above).
	acked, err := client.StreamEventSource(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	start := &gateways.SourceControl{Control: &gateways.SourceControl_Start{Start: &gateways.StartSource{Source: es}}}
	if err := acked.Send(start); err != nil && !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
	if _, err := acked.Recv(); status.Code(err) != codes.Unimplemented {
		t.Errorf("StreamEventSource on a v0.10 server: %v, want Unimplemented", err)
	}
}

// A v0.10 client knows only StartEventSource; our server implementing StreamEventSource
// changes nothing for it (TestV010ClientTalksToOurServer), and our own client's
// StreamEventSource reaches the same source with seqs.
func TestOurServerOffersBothRPCs(t *testing.T) {
	gw := testenv.StartGateway(t, &counterGateway{})
	s := testenv.OpenAckedStream(t, gw.Client, &gateways.EventSource{Name: "two", Data: "count: 2"}, 0)
	for want := uint64(1); want <= 2; want++ {
		if ev := s.Next(t, 10*time.Second); ev.GetSeq() != want || ev.GetName() != "two" {
			t.Errorf("event = %v, want seq %d of \"two\"", ev, want)
		}
	}
}
