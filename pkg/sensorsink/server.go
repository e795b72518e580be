package sensorsink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// Endpoints says where a Sink listens. An empty HTTP address or NATS URL leaves that side
// off; at least one must be given.
type Endpoints struct {
	// HTTP is the listen address, host:port; port 0 picks a free one (see Server.Addr).
	HTTP string
	// NATSURL is the NATS server (or comma-separated servers) to subscribe through.
	NATSURL string
	// NATSSubject is the subject to take events from; required with NATSURL.
	NATSSubject string
}

// Validate reports what is wrong with ep, if anything.
func (ep Endpoints) Validate() error {
	var errs []error
	if ep.HTTP == "" && ep.NATSURL == "" {
		errs = append(errs, errors.New("nothing to listen on: give an HTTP address or a NATS URL"))
	}
	if ep.HTTP != "" {
		if _, _, err := net.SplitHostPort(ep.HTTP); err != nil {
			errs = append(errs, fmt.Errorf("http address %q: want host:port", ep.HTTP))
		}
	}
	if ep.NATSURL != "" && ep.NATSSubject == "" {
		errs = append(errs, errors.New("NATS subject is required with a NATS URL"))
	}
	if ep.NATSURL == "" && ep.NATSSubject != "" {
		errs = append(errs, fmt.Errorf("NATS subject %q given without a NATS URL", ep.NATSSubject))
	}
	return errors.Join(errs...)
}

// Server is a Sink serving its Endpoints; Start returns it once every endpoint is ready.
type Server struct {
	sink *Sink

	http      *http.Server
	addr      string
	serveErr  error
	serveDone chan struct{} // nil without HTTP, so that a select on it never fires

	nats       *nats.Conn
	natsClosed chan struct{}

	stopOnce sync.Once
	stopErr  error
}

// Start listens on ep and serves in the background until Stop. When it returns, the HTTP
// port is bound and, if the NATS server is reachable, the subscription is in place, so
// events sent from then on are received. An unreachable NATS server is retried in the
// background rather than failing the start, since sensors and brokers start in any order.
func (s *Sink) Start(ctx context.Context, ep Endpoints) (*Server, error) {
	if err := ep.Validate(); err != nil {
		return nil, err
	}
	srv := &Server{sink: s}
	if ep.NATSURL != "" {
		if err := srv.startNATS(ep); err != nil {
			return nil, err
		}
	}
	if ep.HTTP != "" {
		var lc net.ListenConfig
		lis, err := lc.Listen(ctx, "tcp", ep.HTTP)
		if err != nil {
			if srv.nats != nil {
				srv.nats.Close()
			}
			return nil, fmt.Errorf("listen on %s: %w", ep.HTTP, err)
		}
		srv.addr = lis.Addr().String()
		srv.http = &http.Server{
			Handler:           s,
			ReadHeaderTimeout: 10 * time.Second,
			ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
			// No write timeout: a stalled delivery is held for as long as its sender waits.
		}
		srv.serveDone = make(chan struct{})
		go func() {
			defer close(srv.serveDone)
			srv.serveErr = srv.http.Serve(lis)
		}()
		s.log.Info("sensor listening", "http", srv.addr)
	}
	return srv, nil
}

func (srv *Server) startNATS(ep Endpoints) error {
	log := srv.sink.log.With("nats", ep.NATSURL, "subject", ep.NATSSubject)
	srv.natsClosed = make(chan struct{})
	var closeOnce sync.Once
	nc, err := nats.Connect(ep.NATSURL,
		nats.Name("eventgate-sensor"),
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		// Brokers come and go in demos and tests; pick them up again quickly.
		nats.ReconnectWait(250*time.Millisecond),
		nats.ConnectHandler(func(*nats.Conn) { log.Info("NATS connected") }),
		nats.ReconnectHandler(func(*nats.Conn) { log.Info("NATS reconnected") }),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("NATS disconnected", "error", err)
			}
		}),
		nats.ClosedHandler(func(*nats.Conn) { closeOnce.Do(func() { close(srv.natsClosed) }) }),
	)
	if err != nil {
		return fmt.Errorf("connect to NATS %s: %w", ep.NATSURL, err)
	}
	srv.nats = nc
	if _, err := nc.Subscribe(ep.NATSSubject, srv.sink.HandleNATS); err != nil {
		nc.Close()
		return fmt.Errorf("subscribe to NATS subject %q: %w", ep.NATSSubject, err)
	}
	if !nc.IsConnected() {
		log.Warn("NATS server not reachable yet; retrying in the background")
		return nil
	}
	// The round trip makes sure the server has the subscription before Start returns.
	if err := nc.FlushTimeout(10 * time.Second); err != nil {
		nc.Close()
		return fmt.Errorf("subscribe to NATS subject %q: %w", ep.NATSSubject, err)
	}
	log.Info("sensor subscribed")
	return nil
}

// Addr is the bound HTTP address (host:port), or "" without HTTP.
func (srv *Server) Addr() string { return srv.addr }

// URL is where to send events over HTTP, or "" without HTTP.
func (srv *Server) URL() string {
	if srv.addr == "" {
		return ""
	}
	return "http://" + srv.addr + "/"
}

// Stop closes the Sink (stalled deliveries are refused), stops taking new ones, and waits
// until ctx ends for those in flight: open HTTP requests, NATS messages already received.
// Past ctx, what is left is cut. Later calls return the first one's result.
func (srv *Server) Stop(ctx context.Context) error {
	srv.stopOnce.Do(func() { srv.stopErr = srv.stop(ctx) })
	return srv.stopErr
}

func (srv *Server) stop(ctx context.Context) error {
	srv.sink.Close()
	var errs []error
	if srv.http != nil {
		if err := srv.http.Shutdown(ctx); err != nil {
			srv.http.Close()
			errs = append(errs, fmt.Errorf("stop HTTP: %w", err))
		}
		<-srv.serveDone
		if !errors.Is(srv.serveErr, http.ErrServerClosed) {
			errs = append(errs, fmt.Errorf("serve HTTP on %s: %w", srv.addr, srv.serveErr))
		}
	}
	if err := srv.stopNATS(ctx); err != nil {
		errs = append(errs, err)
	}
	srv.sink.log.Info("sensor stopped")
	return errors.Join(errs...)
}

// stopNATS drains: the subscription stops, messages already received are handled, then
// the connection closes.
func (srv *Server) stopNATS(ctx context.Context) error {
	if srv.nats == nil {
		return nil
	}
	if err := srv.nats.Drain(); err != nil {
		// Not connected (still retrying): nothing to drain.
		srv.nats.Close()
	}
	select {
	case <-srv.natsClosed:
		return nil
	case <-ctx.Done():
		srv.nats.Close()
		<-srv.natsClosed
		return fmt.Errorf("drain NATS: %w", ctx.Err())
	}
}

// Run serves ep until ctx ends (or the HTTP server fails), then stops gracefully within the
// Sink's shutdown timeout.
func (s *Sink) Run(ctx context.Context, ep Endpoints) error {
	srv, err := s.Start(ctx, ep)
	if err != nil {
		return err
	}
	select {
	case <-ctx.Done():
		s.log.Info("sensor stopping", "timeout", s.shutdownTimeout)
	case <-srv.serveDone:
	}
	stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.shutdownTimeout)
	defer cancel()
	return srv.Stop(stopCtx)
}
