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
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/allocation"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/orders"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/pipeline"
)

// EventSource is the CloudEvents source of the events this service emits.
const EventSource = "/reefer-dlq/order-retry"

// Run starts the service and blocks until ctx ends, then shuts it down:
// pipeline.Run wires the steps both pipeline services share (store,
// inventory, writers, reader, ops server, consumer; shutdown in reverse,
// each step within cfg.ShutdownTimeout). What is this service's own, the
// lesson, is below: it reads the retry topic through the due-time
// scheduler, which holds each record until its x-retry-due-at without
// blocking its partition. At shutdown, running retries finish; records
// still waiting for their due time are dropped: their offsets were never
// committed, so they come back after a restart.
//
// Run returns nil after a shutdown requested through ctx, and an error
// when a dependency cannot start or the consumer fails.
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
		Name:      "order-retry",
		Source:    EventSource,
		Topic:     cfg.RetryTopic,
		Group:     cfg.ConsumerGroup,
		HTTPAddr:  cfg.HTTPAddr,
		Registry:  reg,
		Handoff:   &m.handoff,
		LagDesc:   lagDesc,
		OnBreaker: m.setBreakerState,
		Inventory: func(next allocation.Inventory) allocation.Inventory {
			return countedInventory{next: next, fast: m.fastFailures}
		},
		// SkipOtherTypes stays false: the retry topic should only ever
		// hold orders, so anything else is poison.
		Handler: func(p *orders.Processor) consumer.Handler {
			return (&handler{log: log, metrics: m, processor: p, maxDueAhead: cfg.MaxDueAhead, now: time.Now}).handle
		},
		Consumer: consumer.Config{
			Dispatcher:      sched,
			MaxPendingBytes: int64(cfg.MaxPendingBytes),
			OnFetched:       func(kafka.Message) { m.consumed.Inc() },
		},
	})
}
