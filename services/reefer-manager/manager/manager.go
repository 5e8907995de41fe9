package manager

import (
	"context"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/consumer"
	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/handoff"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/allocation"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/orders"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/pipeline"
)

// EventSource is the CloudEvents source of the events this service emits.
const EventSource = "/reefer-dlq/reefer-manager"

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
		Observe:        (&observer{log: log, metrics: m}).observe,

		Consumer: consumer.Config{
			MaxInFlight:            cfg.MaxInFlight,
			MaxPendingBytes:        int64(cfg.MaxPendingBytes),
			CommitBeforeProcessing: cfg.CommitMode == CommitBeforeProcessing,
			OnFetched:              func(kafka.Message) { m.consumed.Inc() },
		},
	})
}

// observer counts and logs every record the processor handled: what is
// this service's own in a record's path.
type observer struct {
	log     *slog.Logger
	metrics *metrics
}

func (o *observer) observe(ctx context.Context, h orders.Handled) {
	d, msg := h.Decision, h.Record
	o.metrics.observe(d, h.Err, h.Took)
	if h.Err != nil {
		return
	}
	o.metrics.handoff.Observe(d.Decision)
	at := []any{"order_id", d.OrderID, "partition", msg.Partition, "offset", msg.Offset}
	switch d.Route {
	case handoff.RouteDeadLetter:
		o.log.WarnContext(ctx, "order dead-lettered", append(at, "reason", d.Reason, "attempt", d.Attempt, "error", d.Err)...)
	case handoff.RouteRetry:
		// Debug, not Info: during an outage every order takes this route,
		// and records_retried_total already counts them.
		o.log.DebugContext(ctx, "order handed to retry", append(at, "attempt", d.Attempt, "due_at", d.DueAt, "error", d.Err)...)
	default:
		o.log.DebugContext(ctx, "record concluded", append(at, "route", d.Route, "container_id", d.ContainerID)...)
	}
}
