// A gateway-client in C++ on the generated stubs (tools/protogen.sh stubs cpp): it validates
// an event source on a gateway server, then starts it and prints its first events.
//
//   client ADDR [DATA] [COUNT]    e.g. client 127.0.0.1:9330 'interval: 100ms' 3
//
// Exit status 0 when the source validated and COUNT events arrived; 1, with the reason on
// stderr, otherwise. Build: see tools/polyglot/polyglot_test.go or the README.
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "gateways/eventing.grpc.pb.h"

namespace {

constexpr auto kTimeout = std::chrono::seconds(30);

int fail(const std::string& what, const grpc::Status& status) {
  std::cerr << "client: " << what << ": " << status.error_code() << " " << status.error_message() << std::endl;
  return 1;
}

std::chrono::system_clock::time_point deadline() { return std::chrono::system_clock::now() + kTimeout; }

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || argc > 4) {
    std::cerr << "usage: " << argv[0] << " ADDR [DATA] [COUNT]" << std::endl;
    return 2;
  }
  const std::string addr = argv[1];
  const std::string data = argc > 2 ? argv[2] : "interval: 100ms";
  const int count = argc > 3 ? std::atoi(argv[3]) : 3;

  auto channel = grpc::CreateChannel(addr, grpc::InsecureChannelCredentials());
  auto stub = gateways::Eventing::NewStub(channel);

  gateways::EventSource source;
  source.set_name("polyglot-cpp");
  source.set_id("polyglot-cpp");
  source.set_data(data);

  {
    grpc::ClientContext ctx;
    ctx.set_deadline(deadline());
    ctx.set_wait_for_ready(true);  // the server may still be starting
    gateways::ValidEventSource valid;
    grpc::Status status = stub->ValidateEventSource(&ctx, source, &valid);
    if (!status.ok()) return fail("ValidateEventSource", status);
    if (!valid.is_valid()) {
      std::cerr << "client: source is invalid: " << valid.reason() << std::endl;
      return 1;
    }
    std::cout << "valid: " << source.name() << std::endl;
  }

  grpc::ClientContext ctx;
  ctx.set_deadline(deadline());
  auto stream = stub->StartEventSource(&ctx, source);
  gateways::Event event;
  int got = 0;
  while (got < count && stream->Read(&event)) {
    ++got;
    std::cout << "event " << got << ": name=" << event.name() << " id=" << event.id()
              << " content_type=" << event.content_type() << " payload=" << event.payload() << std::endl;
  }
  if (got < count) {
    grpc::Status status = stream->Finish();
    return fail("StartEventSource ended after " + std::to_string(got) + " events", status);
  }
  // Done reading: cancel the stream, which stops the source on the server.
  ctx.TryCancel();
  stream->Finish();
  return 0;
}
