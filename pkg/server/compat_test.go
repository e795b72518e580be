package server_test

import (
	"context"
	"net"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/eventgate/eventgate/pkg/testenv"
	"github.com/eventgate/eventgate/protos/gateways"
)

// v010 is the Argo Events v0.10 contract rebuilt from its published field list alone, not
// from our .proto: a peer speaking it must interoperate with ours both ways.
type v010 struct {
	eventSource, event, validEventSource protoreflect.MessageDescriptor
}

func newV010(t *testing.T) v010 {
	t.Helper()
	field := func(name string, number int32, typ descriptorpb.FieldDescriptorProto_Type) *descriptorpb.FieldDescriptorProto {
		return &descriptorpb.FieldDescriptorProto{
			Name: proto.String(name), Number: proto.Int32(number), Type: typ.Enum(),
			Label: descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum(), JsonName: proto.String(name),
		}
	}
	str, byt, bol := descriptorpb.FieldDescriptorProto_TYPE_STRING, descriptorpb.FieldDescriptorProto_TYPE_BYTES, descriptorpb.FieldDescriptorProto_TYPE_BOOL
	file := &descriptorpb.FileDescriptorProto{
		Name: proto.String("v010/gateway.proto"), Package: proto.String("gateways"), Syntax: proto.String("proto3"),
		MessageType: []*descriptorpb.DescriptorProto{
			{Name: proto.String("EventSource"), Field: []*descriptorpb.FieldDescriptorProto{
				field("id", 1, str), field("name", 2, str), field("data", 3, str), field("version", 4, str)}},
			{Name: proto.String("Event"), Field: []*descriptorpb.FieldDescriptorProto{
				field("name", 1, str), field("payload", 2, byt)}},
			{Name: proto.String("ValidEventSource"), Field: []*descriptorpb.FieldDescriptorProto{
				field("isValid", 1, bol), field("reason", 2, str)}},
		},
	}
	fd, err := protodesc.NewFile(file, nil)
	if err != nil {
		t.Fatal(err)
	}
	msgs := fd.Messages()
	return v010{msgs.ByName("EventSource"), msgs.ByName("Event"), msgs.ByName("ValidEventSource")}
}

func (v v010) newEventSource(id, name, data string) *dynamicpb.Message {
	m := dynamicpb.NewMessage(v.eventSource)
	m.Set(v.eventSource.Fields().ByName("id"), protoreflect.ValueOfString(id))
	m.Set(v.eventSource.Fields().ByName("name"), protoreflect.ValueOfString(name))
	m.Set(v.eventSource.Fields().ByName("data"), protoreflect.ValueOfString(data))
	m.Set(v.eventSource.Fields().ByName("version"), protoreflect.ValueOfString("v0.10"))
	return m
}

func get(m *dynamicpb.Message, field string) protoreflect.Value {
	return m.Get(m.Descriptor().Fields().ByName(protoreflect.Name(field)))
}

func TestV010ClientTalksToOurServer(t *testing.T) {
	v := newV010(t)
	gw := testenv.StartGateway(t, &counterGateway{})

	reply := dynamicpb.NewMessage(v.validEventSource)
	err := gw.Conn.Invoke(t.Context(), "/gateways.Eventing/ValidateEventSource", v.newEventSource("1", "bad", "count: -1"), reply)
	if err != nil {
		t.Fatal(err)
	}
	if get(reply, "isValid").Bool() || get(reply, "reason").String() != "counter.count: must not be negative, got -1" {
		t.Fatalf("v0.10 validate reply = %v", reply)
	}

	stream, err := gw.Conn.NewStream(t.Context(), &grpc.StreamDesc{ServerStreams: true}, "/gateways.Eventing/StartEventSource")
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.SendMsg(v.newEventSource("2", "two", "count: 2\npayloadSize: 3")); err != nil {
		t.Fatal(err)
	}
	if err := stream.CloseSend(); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		ev := dynamicpb.NewMessage(v.event)
		if err := stream.RecvMsg(ev); err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if get(ev, "name").String() != "two" || len(get(ev, "payload").Bytes()) != 3 {
			t.Errorf("v0.10 event %d = %v", i, ev)
		}
	}
}

func TestOurClientTalksToV010Server(t *testing.T) {
	v := newV010(t)
	var seen *dynamicpb.Message
	desc := grpc.ServiceDesc{
		ServiceName: "gateways.Eventing",
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{{
			MethodName: "ValidateEventSource",
			Handler: func(_ any, _ context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
				in := dynamicpb.NewMessage(v.eventSource)
				if err := dec(in); err != nil {
					return nil, err
				}
				seen = in
				out := dynamicpb.NewMessage(v.validEventSource)
				out.Set(v.validEventSource.Fields().ByName("isValid"), protoreflect.ValueOfBool(false))
				out.Set(v.validEventSource.Fields().ByName("reason"), protoreflect.ValueOfString("v0.10 says no"))
				return out, nil
			},
		}},
		Streams: []grpc.StreamDesc{{
			StreamName:    "StartEventSource",
			ServerStreams: true,
			Handler: func(_ any, stream grpc.ServerStream) error {
				in := dynamicpb.NewMessage(v.eventSource)
				if err := stream.RecvMsg(in); err != nil {
					return err
				}
				ev := dynamicpb.NewMessage(v.event)
				ev.Set(v.event.Fields().ByName("name"), get(in, "name"))
				ev.Set(v.event.Fields().ByName("payload"), protoreflect.ValueOfBytes([]byte(`{"from":"v0.10"}`)))
				return stream.SendMsg(ev)
			},
		}},
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	srv.RegisterService(&desc, struct{}{})
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)

	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
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
	for field, want := range map[string]string{"id": "abc", "name": "legacy", "data": "interval: 1s", "version": "v0.10"} {
		if got := get(seen, field).String(); got != want {
			t.Errorf("v0.10 server saw %s = %q, want %q", field, got, want)
		}
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
}
