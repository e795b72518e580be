package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// servers runs one HTTP server per port for the sources that use it: the first route on a
// port opens its server, the last one to go closes it.
type servers struct {
	// host is the address the servers bind: all interfaces when empty, as v0.10 did.
	host string

	mu     sync.Mutex
	byPort map[int]*portServer
	// closing holds the ports whose server is shutting down; a source that wants the port
	// waits on the channel, which closes once the port is free again.
	closing map[int]chan struct{}
}

func newServers(host string) *servers {
	return &servers{host: host, byPort: map[int]*portServer{}, closing: map[int]chan struct{}{}}
}

// shutdownTimeout bounds the wait for requests in flight when a port's last route goes.
// They end fast: their source's context is gone, so they are answered 503.
const shutdownTimeout = 5 * time.Second

// portServer is one HTTP server and the routes active on it.
type portServer struct {
	port int
	tls  *tlsFiles
	srv  *http.Server
	// table is replaced, never changed, under servers.mu; requests read it without a lock.
	table atomic.Pointer[routeTable]
	count int // routes in table, under servers.mu
	// served is closed when the server has stopped serving; err says why.
	served chan struct{}
	err    error
}

// routeTable maps an endpoint to its routes by method.
type routeTable map[string]map[string]*route

// add makes rt active on its port, opening the port's server if it is the first route. It
// waits while the port's previous server is closing. A route that another source already
// serves, or TLS settings that differ from those the port's server runs with, are errors.
func (sv *servers) add(ctx context.Context, rt *route) (*portServer, error) {
	port := rt.port
	sv.mu.Lock()
	defer sv.mu.Unlock()
	for {
		wait, ok := sv.closing[port]
		if !ok {
			break
		}
		sv.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			sv.mu.Lock()
			return nil, ctx.Err()
		}
		sv.mu.Lock()
	}
	ps := sv.byPort[port]
	if ps == nil {
		var err error
		if ps, err = sv.listen(rt); err != nil {
			return nil, err
		}
		sv.byPort[port] = ps
	}
	if !ps.tls.same(rt.tls) {
		return nil, status.Errorf(codes.FailedPrecondition,
			"webhook: port %d serves %s for other event sources; this one asks for %s", port, ps.tls, rt.tls)
	}
	table := *ps.table.Load()
	if other := table[rt.endpoint][rt.method]; other != nil {
		return nil, status.Errorf(codes.AlreadyExists,
			"webhook: event source %q already serves %s %s on port %d", other.source, rt.method, rt.endpoint, port)
	}
	next := maps.Clone(table)
	next[rt.endpoint] = maps.Clone(table[rt.endpoint])
	if next[rt.endpoint] == nil {
		next[rt.endpoint] = map[string]*route{}
	}
	next[rt.endpoint][rt.method] = rt
	ps.table.Store(&next)
	ps.count++
	return ps, nil
}

// remove deactivates rt (its path answers 404 from now on, or 405 if other methods remain),
// and closes the server when rt was its last route, waiting until the port is free.
func (sv *servers) remove(ps *portServer, rt *route) {
	sv.mu.Lock()
	table := *ps.table.Load()
	next := maps.Clone(table)
	methods := maps.Clone(table[rt.endpoint])
	delete(methods, rt.method)
	if len(methods) == 0 {
		delete(next, rt.endpoint)
	} else {
		next[rt.endpoint] = methods
	}
	ps.table.Store(&next)
	ps.count--
	if ps.count > 0 {
		sv.mu.Unlock()
		return
	}
	delete(sv.byPort, ps.port)
	freed := make(chan struct{})
	sv.closing[ps.port] = freed
	sv.mu.Unlock()

	ps.close()

	sv.mu.Lock()
	delete(sv.closing, ps.port)
	close(freed)
	sv.mu.Unlock()
}

// listen opens rt's port and serves it in a goroutine that ps.close waits for.
func (sv *servers) listen(rt *route) (*portServer, error) {
	addr := net.JoinHostPort(sv.host, strconv.Itoa(rt.port))
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		// Unavailable: the client retries, and the port may be free by then.
		return nil, status.Errorf(codes.Unavailable, "webhook: listen on %s: %v", addr, err)
	}
	ps := &portServer{port: rt.port, tls: rt.tls, served: make(chan struct{})}
	ps.table.Store(&routeTable{})
	ps.srv = &http.Server{
		Handler:           ps,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(rt.log.Handler(), slog.LevelWarn),
	}
	if rt.tls != nil {
		ps.srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{rt.tls.cert}}
	}
	go func() {
		defer close(ps.served)
		if ps.tls != nil {
			ps.err = ps.srv.ServeTLS(lis, "", "")
		} else {
			ps.err = ps.srv.Serve(lis)
		}
	}()
	return ps, nil
}

// close stops the server gracefully, cutting requests still open after shutdownTimeout,
// and returns once it has stopped serving.
func (ps *portServer) close() {
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := ps.srv.Shutdown(ctx); err != nil {
		ps.srv.Close()
	}
	<-ps.served
}

// failure is why the server stopped serving while it still had routes.
func (ps *portServer) failure() error {
	err := ps.err
	if err == nil || errors.Is(err, http.ErrServerClosed) {
		err = errors.New("closed")
	}
	return status.Errorf(codes.Unavailable, "webhook: HTTP server on port %d stopped: %v", ps.port, err)
}

// ServeHTTP finds the request's route: 404 for a path no source serves, 405 (with the
// methods it does accept) for a method none of its sources accept.
func (ps *portServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	byMethod := (*ps.table.Load())[r.URL.Path]
	if byMethod == nil {
		// A source may take /health for itself (v0.10 had no such path); it wins.
		if r.URL.Path == healthPath {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.Write([]byte("ok\n"))
			return
		}
		http.NotFound(w, r)
		return
	}
	rt := byMethod[r.Method]
	if rt == nil {
		w.Header().Set("Allow", allowed(byMethod))
		http.Error(w, fmt.Sprintf("method %s not allowed on %s", r.Method, r.URL.Path), http.StatusMethodNotAllowed)
		return
	}
	rt.ServeHTTP(w, r)
}

// healthPath answers 200 on every webhook port while its server runs.
const healthPath = "/health"
