package main

import (
	"context"
	"log/slog"
	"runtime"
)

// runLocal runs the client without Kubernetes: the Gateway and its event sources come from
// files, and the event sources file is watched for changes.
func runLocal(ctx context.Context, cfg clientConfig, log *slog.Logger) error {
	gw, err := readGateway(cfg.gatewayFile)
	if err != nil {
		return err
	}
	log = log.With("gateway", gw.Name)
	c, err := startClient(ctx, cfg, gw, log, nil)
	if err != nil {
		return err
	}
	defer c.close()
	log.Info("gateway-client running", "servers", c.servers, "sensors", c.sensors, "eventSources", cfg.eventSourcesFile, "goMaxProcs", runtime.GOMAXPROCS(0))
	return watchFile(ctx, cfg.eventSourcesFile, log, func(data map[string]string) { c.apply(data, log) })
}
