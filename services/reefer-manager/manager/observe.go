package manager

import (
	"context"
	"log/slog"

	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/handoff"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/orders"
)

// observer counts and logs every record the processor handled: what is
// this service's own in a record's path.
type observer struct {
	log     *slog.Logger
	metrics *metrics
}

func (o *observer) observe(ctx context.Context, h orders.Handled) {
	d, msg := h.Decision, h.Record
	o.metrics.observe(h)
	if h.Err != nil {
		return
	}
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
