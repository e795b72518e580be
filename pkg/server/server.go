package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/logging"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/recovery"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	"github.com/eventgate/eventgate/protos/gateways"
)

// DefaultShutdownTimeout bounds a graceful stop: past it, open streams are cut.
const DefaultShutdownTimeout = 10 * time.Second

// receiveWindow is the server's fixed HTTP/2 flow-control window, per stream and per
// connection. What a server receives is a client's start message and its acks, a few
// bytes each, so HTTP/2's default size is plenty. It is fixed because gRPC's dynamic
// window sends a BDP ping on the first data frame after each ping's answer: with acks
// trickling in one by one, that is a ping and its answer per ack, four more system calls
// per event across the two processes, all to size a window that never fills.
const receiveWindow = 64 << 10

// Server is one gateway server: the Eventing service for a Gateway plus the gRPC health
// and reflection services.
type Server struct {
	gw              Gateway
	log             *slog.Logger
	shutdownTimeout time.Duration
	tls             *tls.Config
}

// Option adjusts a Server.
type Option func(*Server)

// WithLogger sets the logger (slog.Default otherwise).
func WithLogger(l *slog.Logger) Option { return func(s *Server) { s.log = l } }

// WithShutdownTimeout bounds the graceful stop (DefaultShutdownTimeout otherwise).
func WithShutdownTimeout(d time.Duration) Option { return func(s *Server) { s.shutdownTimeout = d } }

// WithTLS serves gRPC over TLS with cfg (Env.TLSConfig); plaintext when cfg is nil.
func WithTLS(cfg *tls.Config) Option { return func(s *Server) { s.tls = cfg } }

// New returns a server for gw.
func New(gw Gateway, opts ...Option) *Server {
	s := &Server{gw: gw, log: slog.Default(), shutdownTimeout: DefaultShutdownTimeout}
	for _, o := range opts {
		o(s)
	}
	s.log = s.log.With("gateway", gw.Type())
	return s
}

// Serve serves on lis until ctx ends, then stops gracefully: health turns NOT_SERVING,
// every source is cancelled, and open calls get shutdownTimeout to finish.
func (s *Server) Serve(ctx context.Context, lis net.Listener) error {
	stopping, stop := context.WithCancel(context.Background())
	defer stop()

	grpcServer, ev := s.newGRPCServer(stopping)
	served := make(chan error, 1)
	go func() { served <- grpcServer.Serve(lis) }()
	s.log.Info("gateway server listening", "address", lis.Addr().String(),
		"tls", s.tls != nil, "clientCertificates", s.tls != nil && s.tls.ClientAuth == tls.RequireAndVerifyClientCert,
		"goMaxProcs", runtime.GOMAXPROCS(0))

	select {
	case err := <-served:
		stop()
		return fmt.Errorf("serve gRPC on %s: %w", lis.Addr(), err)
	case <-ctx.Done():
	}

	s.log.Info("gateway server stopping", "timeout", s.shutdownTimeout)
	stop()
	graceful := make(chan struct{})
	go func() {
		grpcServer.GracefulStop()
		close(graceful)
	}()
	select {
	case <-graceful:
	case <-time.After(s.shutdownTimeout):
		s.log.Warn("graceful stop timed out: closing open streams")
		grpcServer.Stop()
		<-graceful
	}
	// Every call has ended, so every ack reader's Recv has returned or is about to.
	ev.readers.Wait()
	if err := <-served; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return fmt.Errorf("serve gRPC on %s: %w", lis.Addr(), err)
	}
	s.log.Info("gateway server stopped")
	return nil
}

// ListenAndServe listens on address (host:port) and serves until ctx ends.
func (s *Server) ListenAndServe(ctx context.Context, address string) error {
	var lc net.ListenConfig
	lis, err := lc.Listen(ctx, "tcp", address)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", address, err)
	}
	return s.Serve(ctx, lis)
}

func (s *Server) newGRPCServer(stopping context.Context) (*grpc.Server, *eventing) {
	logOpts := []logging.Option{logging.WithLogOnEvents(logging.StartCall, logging.FinishCall)}
	recoverOpts := []recovery.Option{recovery.WithRecoveryHandlerContext(s.recovered)}
	opts := []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(
			logging.UnaryServerInterceptor(slogAdapter(s.log), logOpts...),
			recovery.UnaryServerInterceptor(recoverOpts...),
		),
		grpc.ChainStreamInterceptor(
			logging.StreamServerInterceptor(slogAdapter(s.log), logOpts...),
			recovery.StreamServerInterceptor(recoverOpts...),
		),
		// Clients keep idle connections alive with pings; allow them rather than answer
		// with GOAWAY "too_many_pings".
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{
			MinTime:             10 * time.Second,
			PermitWithoutStream: true,
		}),
		grpc.StaticStreamWindowSize(receiveWindow),
		grpc.StaticConnWindowSize(receiveWindow),
	}
	if s.tls != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(s.tls)))
	}
	grpcServer := grpc.NewServer(opts...)
	ev := &eventing{gw: s.gw, log: s.log, stopping: stopping}
	gateways.RegisterEventingServer(grpcServer, ev)

	healthServer := health.NewServer()
	healthServer.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	healthServer.SetServingStatus(gateways.Eventing_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(grpcServer, healthServer)
	context.AfterFunc(stopping, healthServer.Shutdown)

	reflection.Register(grpcServer)
	return grpcServer, ev
}

// recovered turns a panic in a handler into an Internal status and logs where it came from.
func (s *Server) recovered(ctx context.Context, p any) error {
	s.log.ErrorContext(ctx, "panic in gRPC handler", "panic", p, "stack", string(debug.Stack()))
	return status.Errorf(codes.Internal, "internal error: %v", p)
}

// slogAdapter lets go-grpc-middleware's logging interceptors write through slog; their
// levels are slog's levels.
func slogAdapter(l *slog.Logger) logging.Logger {
	return logging.LoggerFunc(func(ctx context.Context, lvl logging.Level, msg string, fields ...any) {
		l.Log(ctx, slog.Level(lvl), msg, fields...)
	})
}
