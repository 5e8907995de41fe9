package manager

import (
	"context"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/consumer"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/pipeline"
)

// Run is reefer-manager until ctx ends: [pipeline.Run] with the orders
// topic read in per-key lanes, as fast as records come, and every
// failure handed to the retry topic at once.
func Run(ctx context.Context, log *slog.Logger, cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	log.Info("starting reefer-manager", "config", cfg)
	reg := prometheus.NewRegistry()
	m, err := newMetrics(reg)
	if err != nil {
		return err
	}
	return pipeline.Run(ctx, log, cfg.Stage, pipeline.Service{
		Name:     "reefer-manager",
		Source:   "/reefer-dlq/reefer-manager", // of the events it emits
		Topic:    cfg.OrdersTopic,
		Group:    cfg.ConsumerGroup,
		HTTPAddr: cfg.HTTPAddr,
		Registry: reg,
		Metrics:  m.stage,
		// The orders topic also carries the events this service emits.
		SkipOtherTypes: true,
		Observe:        (&observer{log: log, metrics: m}).observe,
		Consumer: consumer.Config{
			MaxInFlight:            cfg.MaxInFlight,
			MaxPendingBytes:        int64(cfg.MaxPendingBytes),
			CommitBeforeProcessing: cfg.CommitMode == CommitBeforeProcessing,
		},
	})
}
