// Package server is the gateway-server framework: a gateway type implements Gateway (parse
// and validate one event source, start it), and Main/Run give it the Eventing gRPC service
// with validation, per-source cancellation, back-pressure, health, reflection and a bounded
// graceful stop.
package server
