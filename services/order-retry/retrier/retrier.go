package retrier

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry"
	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/consumer"
	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/scheduler"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/pipeline"
)

// Run is order-retry until ctx ends: [pipeline.Run] with the retry topic
// read through the due-time scheduler, which holds each record until its
// x-retry-due-at without blocking its partition. At shutdown, running
// retries finish; records still waiting for their due time are dropped:
// their offsets were never committed, so they come back after a restart.
func Run(ctx context.Context, log *slog.Logger, cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	log.Info("starting order-retry", "config", cfg)
	// The scheduler is created first because the metrics read its state.
	// Its OnStart reports to the metrics, which exist before it runs.
	var m *metrics
	sched := scheduler.New(scheduler.Config{
		MaxPending: cfg.MaxPending,
		Workers:    cfg.MaxInFlight,
		DueAt:      kafkaretry.ReleaseAt(cfg.MaxDueAhead, time.Now),
		OnStart: func(msg kafka.Message, lateness time.Duration) {
			// Records without a usable due time were released at once to be
			// dead-lettered; their "lateness" means nothing.
			if due, ok := kafkaretry.DueAt(msg); ok && !due.After(time.Now()) {
				m.lateness.Observe(lateness.Seconds())
			}
		},
		Log: log.With("component", "scheduler"),
	})
	reg := prometheus.NewRegistry()
	m, err := newMetrics(reg, cfg.RetryMaxAttempts, sched.Pending, sched.Running, cfg.MaxPending)
	if err != nil {
		return err
	}
	return pipeline.Run(ctx, log, cfg.Stage, pipeline.Service{
		Name:     "order-retry",
		Source:   "/reefer-dlq/order-retry", // of the events it emits
		Topic:    cfg.RetryTopic,
		Group:    cfg.ConsumerGroup,
		HTTPAddr: cfg.HTTPAddr,
		Registry: reg,
		Metrics:  m.stage,
		// SkipOtherTypes stays false: the retry topic should only ever
		// hold orders, so anything else is poison.
		ReadHeaders: (&headerReader{maxDueAhead: cfg.MaxDueAhead}).read,
		Observe:     (&observer{log: log, metrics: m}).observe,
		Consumer: consumer.Config{
			Dispatcher:      sched,
			MaxPendingBytes: int64(cfg.MaxPendingBytes),
		},
	})
}
