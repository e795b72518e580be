// Package sensorsink is a CloudEvents sink that plays a sensor: it records and prints the
// events it receives over HTTP and NATS, and can be told at run time to fail or stall so
// that senders' retries and timeouts can be tested. services/sensor runs it as a process;
// tests run it in-process with Sink.Start.
package sensorsink
