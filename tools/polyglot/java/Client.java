// A gateway-client in Java on the generated stubs (tools/protogen.sh stubs java): it validates
// an event source on a gateway server, then starts it and prints its first events.
//
//   java -cp CLASSPATH Client ADDR [DATA] [COUNT]    e.g. Client 127.0.0.1:9330 'interval: 100ms' 3
//
// Exit status 0 when the source validated and COUNT events arrived; 1, with the reason on
// stderr, otherwise. Build and classpath: see tools/polyglot/polyglot_test.go or the README.

import dev.eventgate.gateways.Event;
import dev.eventgate.gateways.EventSource;
import dev.eventgate.gateways.EventingGrpc;
import dev.eventgate.gateways.ValidEventSource;
import io.grpc.Context;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.grpc.StatusRuntimeException;
import java.nio.charset.StandardCharsets;
import java.util.Iterator;
import java.util.concurrent.TimeUnit;

public final class Client {
  private static final long TIMEOUT_SECONDS = 30;

  public static void main(String[] args) throws InterruptedException {
    if (args.length < 1 || args.length > 3) {
      System.err.println("usage: Client ADDR [DATA] [COUNT]");
      System.exit(2);
    }
    String addr = args[0];
    String data = args.length > 1 ? args[1] : "interval: 100ms";
    int count = args.length > 2 ? Integer.parseInt(args[2]) : 3;

    ManagedChannel channel = ManagedChannelBuilder.forTarget(addr).usePlaintext().build();
    int status;
    try {
      status = run(channel, data, count);
    } catch (StatusRuntimeException e) {
      System.err.println("client: " + e.getStatus());
      status = 1;
    } finally {
      channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
    System.exit(status);
  }

  private static int run(ManagedChannel channel, String data, int count) {
    EventSource source = EventSource.newBuilder().setName("polyglot-java").setId("polyglot-java").setData(data).build();
    // waitForReady: the server may still be starting.
    EventingGrpc.EventingBlockingStub stub = EventingGrpc.newBlockingStub(channel).withWaitForReady();

    ValidEventSource valid = stub.withDeadlineAfter(TIMEOUT_SECONDS, TimeUnit.SECONDS).validateEventSource(source);
    if (!valid.getIsValid()) {
      System.err.println("client: source is invalid: " + valid.getReason());
      return 1;
    }
    System.out.println("valid: " + source.getName());

    // A cancellable context: cancelling it when done stops the source on the server.
    Context.CancellableContext ctx = Context.current().withCancellation();
    try {
      return ctx.call(() -> {
        Iterator<Event> events = stub.withDeadlineAfter(TIMEOUT_SECONDS, TimeUnit.SECONDS).startEventSource(source);
        int got = 0;
        while (got < count && events.hasNext()) {
          Event ev = events.next();
          got++;
          System.out.println("event " + got + ": name=" + ev.getName() + " id=" + ev.getId()
              + " content_type=" + ev.getContentType()
              + " payload=" + ev.getPayload().toString(StandardCharsets.UTF_8));
        }
        if (got < count) {
          System.err.println("client: StartEventSource ended after " + got + " events");
          return 1;
        }
        return 0;
      });
    } catch (StatusRuntimeException e) {
      throw e;
    } catch (Exception e) {
      System.err.println("client: " + e);
      return 1;
    } finally {
      ctx.cancel(null);
    }
  }
}
