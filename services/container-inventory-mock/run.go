package main

import (
	"context"
	"io"
	"log/slog"

	"github.com/reeferdlq/reefer-dlq/pkg/platform/telemetry"
	"github.com/reeferdlq/reefer-dlq/services/container-inventory-mock/inventorymock"
)

// run reads the configuration, builds the logger and runs the service until
// ctx is done. A bad configuration stops it before anything listens.
func run(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	cfg, err := inventorymock.ConfigFromEnv(getenv)
	if err != nil {
		return err
	}
	log := newLogger(stdout, cfg.LogFormat, cfg.LogLevel)
	log.Info("starting container-inventory-mock", "config", cfg)
	return inventorymock.Run(ctx, log, cfg)
}

// newLogger returns a JSON (format "json") or text logger at level.
func newLogger(w io.Writer, format string, level slog.Level) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == "text" {
		return slog.New(telemetry.LogHandler(slog.NewTextHandler(w, opts)))
	}
	return slog.New(telemetry.LogHandler(slog.NewJSONHandler(w, opts)))
}
