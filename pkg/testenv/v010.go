package testenv

import (
	"context"
	"net"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
)

// V010 is the Argo Events v0.10 contract rebuilt from its published field list alone, not
// from our .proto: a peer speaking it must interoperate with ours both ways (the
// compatibility test), and pass the conformance kit.
type V010 struct {
	EventSource, Event, ValidEventSource protoreflect.MessageDescriptor
}

// NewV010 builds the v0.10 messages from their field list.
func NewV010(t testing.TB) V010 {
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
	return V010{msgs.ByName("EventSource"), msgs.ByName("Event"), msgs.ByName("ValidEventSource")}
}

// NewEventSource is a v0.10 EventSource message.
func (v V010) NewEventSource(id, name, data string) *dynamicpb.Message {
	m := dynamicpb.NewMessage(v.EventSource)
	m.Set(v.EventSource.Fields().ByName("id"), protoreflect.ValueOfString(id))
	m.Set(v.EventSource.Fields().ByName("name"), protoreflect.ValueOfString(name))
	m.Set(v.EventSource.Fields().ByName("data"), protoreflect.ValueOfString(data))
	m.Set(v.EventSource.Fields().ByName("version"), protoreflect.ValueOfString("v0.10"))
	return m
}

// V010Get returns a field of a v0.10 message by its v0.10 name.
func V010Get(m *dynamicpb.Message, field string) protoreflect.Value {
	return m.Get(m.Descriptor().Fields().ByName(protoreflect.Name(field)))
}

// V010Source is an EventSource as a v0.10 peer decoded it.
type V010Source struct {
	ID, Name, Data, Version string
}

// V010Peer is a gateway server that knows only the v0.10 field list: what it receives and
// sends is encoded from NewV010's messages, never from our stubs. It serves no health and no
// reflection, as a v0.10 custom gateway did not.
type V010Peer struct {
	// Validate answers ValidateEventSource.
	Validate func(V010Source) (valid bool, reason string)
	// Start serves StartEventSource: send streams one v0.10 Event (the source's name and
	// payload); the stream ends with Start's error (a status error keeps its code).
	Start func(ctx context.Context, src V010Source, send func(payload []byte) error) error
}

// StartV010Peer serves p on a random 127.0.0.1 port until the test ends and returns its
// address.
func StartV010Peer(t testing.TB, p V010Peer) string {
	t.Helper()
	v := NewV010(t)
	decode := func(dec func(any) error) (V010Source, error) {
		in := dynamicpb.NewMessage(v.EventSource)
		if err := dec(in); err != nil {
			return V010Source{}, err
		}
		return V010Source{
			ID: V010Get(in, "id").String(), Name: V010Get(in, "name").String(),
			Data: V010Get(in, "data").String(), Version: V010Get(in, "version").String(),
		}, nil
	}
	desc := grpc.ServiceDesc{
		ServiceName: "gateways.Eventing",
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{{
			MethodName: "ValidateEventSource",
			Handler: func(_ any, _ context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
				src, err := decode(dec)
				if err != nil {
					return nil, err
				}
				valid, reason := p.Validate(src)
				out := dynamicpb.NewMessage(v.ValidEventSource)
				out.Set(v.ValidEventSource.Fields().ByName("isValid"), protoreflect.ValueOfBool(valid))
				out.Set(v.ValidEventSource.Fields().ByName("reason"), protoreflect.ValueOfString(reason))
				return out, nil
			},
		}},
		Streams: []grpc.StreamDesc{{
			StreamName:    "StartEventSource",
			ServerStreams: true,
			Handler: func(_ any, stream grpc.ServerStream) error {
				src, err := decode(stream.RecvMsg)
				if err != nil {
					return err
				}
				return p.Start(stream.Context(), src, func(payload []byte) error {
					ev := dynamicpb.NewMessage(v.Event)
					ev.Set(v.Event.Fields().ByName("name"), protoreflect.ValueOfString(src.Name))
					ev.Set(v.Event.Fields().ByName("payload"), protoreflect.ValueOfBytes(payload))
					return stream.SendMsg(ev)
				})
			},
		}},
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	srv.RegisterService(&desc, struct{}{})
	served := make(chan struct{})
	go func() {
		defer close(served)
		srv.Serve(lis)
	}()
	t.Cleanup(func() {
		srv.Stop()
		<-served
	})
	return lis.Addr().String()
}
