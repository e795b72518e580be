package main

import (
	"context"
	"fmt"
	"io"
	"slices"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
)

func runHealth(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	var c connFlags
	fs := newFlagSet("health", `Ask the server's grpc.health.v1 service how it is. Prints SERVING (exit 0), or
NOT_SERVING or SERVICE_UNKNOWN (exit 1).`, stderr)
	c.register(fs)
	service := fs.String("service", "", `service to ask about, e.g. gateways.Eventing (default "": the server as a whole)`)
	if _, exit, ok := parseArgs(fs, args, false); !ok {
		return exit
	}
	if err := c.check(); err != nil {
		return usageError(fs, err)
	}
	ctx, conn, done, ok := c.connect(ctx, fs.Name(), stderr)
	if !ok {
		return exitUsage
	}
	defer done()

	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: *service})
	switch status.Code(err) {
	case codes.OK:
		fmt.Fprintln(stdout, resp.GetStatus())
		if resp.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			return exitOK
		}
		return exitFailed
	case codes.NotFound: // how grpc.health.v1 answers for a service it does not know
		fmt.Fprintln(stdout, healthpb.HealthCheckResponse_SERVICE_UNKNOWN)
		return exitFailed
	case codes.Unimplemented:
		fmt.Fprintf(stderr, "%s: the server on %s does not serve grpc.health.v1 (%s)\n", fs.Name(), c.addr, status.Convert(err).Message())
		return exitFailed
	}
	fmt.Fprintf(stderr, "%s: %v\n", fs.Name(), c.callError(ctx, "Health.Check", err))
	return exitUsage
}

func runList(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	var c connFlags
	fs := newFlagSet("list", "List the gRPC services the server offers, one per line, by server reflection.", stderr)
	c.register(fs)
	if _, exit, ok := parseArgs(fs, args, false); !ok {
		return exit
	}
	if err := c.check(); err != nil {
		return usageError(fs, err)
	}
	ctx, conn, done, ok := c.connect(ctx, fs.Name(), stderr)
	if !ok {
		return exitUsage
	}
	defer done()

	names, err := listServices(ctx, reflectionpb.NewServerReflectionClient(conn))
	switch {
	case status.Code(err) == codes.Unimplemented:
		fmt.Fprintf(stderr, "%s: the server on %s does not serve reflection grpc.reflection.v1 (%s)\n", fs.Name(), c.addr, status.Convert(err).Message())
		return exitFailed
	case err != nil:
		fmt.Fprintf(stderr, "%s: %v\n", fs.Name(), c.callError(ctx, "ServerReflectionInfo", err))
		return exitUsage
	}
	for _, name := range names {
		fmt.Fprintln(stdout, name)
	}
	return exitOK
}

// listServices asks once for the service list; cancelling ctx ends the reflection stream.
func listServices(ctx context.Context, client reflectionpb.ServerReflectionClient) ([]string, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := client.ServerReflectionInfo(ctx)
	if err != nil {
		return nil, err
	}
	req := &reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}
	if err := stream.Send(req); err != nil {
		return nil, err
	}
	resp, err := stream.Recv()
	if err != nil {
		return nil, err
	}
	if e := resp.GetErrorResponse(); e != nil {
		return nil, status.Error(codes.Code(e.GetErrorCode()), e.GetErrorMessage())
	}
	var names []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		names = append(names, s.GetName())
	}
	slices.Sort(names)
	return names, nil
}
