package manager

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/consumer"
	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/handoff"
	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/retrymeta"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/allocation"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/orders"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/pipeline"
)

// EventSource is the CloudEvents source of the events this service emits.
const EventSource = "/reefer-dlq/reefer-manager"

// Run starts the service and blocks until ctx ends, then shuts it down:
// pipeline.Run wires the steps both pipeline services share (store,
// inventory, writers, reader, ops server, consumer; shutdown in reverse,
// each step within cfg.ShutdownTimeout). What is this service's own, the
// lesson, is below: it reads the orders topic in per-key lanes, as fast
// as records come, and hands every failure to the retry topic at once.
//
// Run returns nil after a shutdown requested through ctx, and an error
// when a dependency cannot start or the consumer fails.
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
		Name:      "reefer-manager",
		Source:    EventSource,
		Topic:     cfg.OrdersTopic,
		Group:     cfg.ConsumerGroup,
		HTTPAddr:  cfg.HTTPAddr,
		Registry:  reg,
		Handoff:   &m.handoff,
		LagDesc:   lagDesc,
		OnBreaker: m.setBreakerState,
		Inventory: func(next allocation.Inventory) allocation.Inventory {
			return timedInventory{next: next, latency: m.inventory, fast: m.fastFailures}
		},
		// The orders topic also carries the events this service emits.
		SkipOtherTypes: true,
		Handler: func(p *orders.Processor) consumer.Handler {
			return (&handler{log: log, metrics: m, processor: p}).handle
		},
		Consumer: consumer.Config{
			MaxInFlight:            cfg.MaxInFlight,
			MaxPendingBytes:        int64(cfg.MaxPendingBytes),
			CommitBeforeProcessing: cfg.CommitMode == CommitBeforeProcessing,
			OnFetched:              func(kafka.Message) { m.consumed.Inc() },
		},
	})
}

// handler is the consumer handler: one record through the shared
// decode -> allocate -> hand-off steps (orders.Processor), plus this
// service's metrics and logs.
type handler struct {
	log       *slog.Logger
	metrics   *metrics
	processor *orders.Processor
}

// handle returns nil once the record's outcome is acknowledged by the
// broker; an error makes the consumer try the same record again and keeps
// its offset uncommitted.
func (h *handler) handle(ctx context.Context, msg kafka.Message) error {
	start := time.Now()
	// Records on the orders topic have never failed: the first failure is
	// attempt 1. A record redriven here (dlq redrive --to original) keeps
	// its redrive count, which reopens its order and is the loop guard.
	prev, err := retrymeta.FirstAttempt(msg.Headers)
	var d orders.Decision
	if err != nil {
		d.Decision, err = h.processor.Router.Poison(ctx, msg, retrymeta.Meta{}, fmt.Errorf("read headers of record %s/%d@%d: %w", msg.Topic, msg.Partition, msg.Offset, err))
	} else {
		d, err = h.processor.Process(ctx, msg, prev)
	}
	h.metrics.observe(d, err, time.Since(start))
	if err != nil {
		return err
	}
	h.metrics.handoff.Observe(d.Decision)
	at := []any{"order_id", d.OrderID, "partition", msg.Partition, "offset", msg.Offset}
	switch d.Route {
	case handoff.RouteDeadLetter:
		h.log.Warn("order dead-lettered", append(at, "reason", d.Reason, "attempt", d.Attempt, "error", d.Err)...)
	case handoff.RouteRetry:
		// Debug, not Info: during an outage every order takes this route,
		// and records_retried_total already counts them.
		h.log.Debug("order handed to retry", append(at, "attempt", d.Attempt, "due_at", d.DueAt, "error", d.Err)...)
	default:
		h.log.Debug("record concluded", append(at, "route", d.Route, "container_id", d.ContainerID)...)
	}
	return nil
}
