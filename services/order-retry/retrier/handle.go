package retrier

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/failure"
	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/handoff"
	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/retrymeta"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/orders"
)

// observer counts and logs every record the processor handled: what is
// this service's own in a retry's path.
type observer struct {
	log     *slog.Logger
	metrics *metrics
}

func (o *observer) observe(ctx context.Context, h orders.Handled) {
	if errors.Is(h.Err, orders.ErrInterrupted) {
		return // shutting down: not a failure of the record, nor of the hand-off
	}
	d, msg, attempt := h.Decision, h.Record, h.Attempt
	o.metrics.observe(h)
	if h.Err != nil {
		return
	}

	attrs := []any{"key", string(msg.Key), "partition", msg.Partition, "offset", msg.Offset}
	if d.Concluded != "" {
		// A duplicate chain of an order that already concluded; rare (it
		// takes a crash), so worth a line.
		o.log.InfoContext(ctx, "retry of an already concluded order", append(attrs, "attempt", attempt, "concluded", d.Concluded, "route", d.Route)...)
		return
	}
	switch d.Route {
	case handoff.RouteDeadLetter:
		// d.Attempt is the dead letter's x-retry-attempt, also for poison.
		o.log.WarnContext(ctx, "order dead-lettered", append(attrs, "attempt", d.Attempt, "reason", d.Reason, "error", d.Err)...)
	case handoff.RouteRetry:
		// Debug, not Info: during an outage every retry takes this route,
		// and records_retried_total already counts them.
		o.log.DebugContext(ctx, "order failed again; republished", append(attrs, "attempt", d.Attempt, "next_due_at", d.DueAt, "delay", d.Delay, "error", d.Err)...)
	default:
		// Debug too: after an outage every order passes here, and
		// successes_total counts them by attempt.
		o.log.DebugContext(ctx, "order concluded by a retry", append(attrs, "attempt", attempt, "route", d.Route, "container_id", d.ContainerID)...)
	}
}

// headerReader reads the retry headers of the records order-retry
// handles; maxDueAhead is MAX_DUE_AHEAD (see dueAt).
type headerReader struct {
	maxDueAhead time.Duration
}

// read reads the retry metadata of msg. A record on the retry topic
// must carry a complete, valid set (retrymeta.ParseRetry) with a due time
// that has come: the scheduler releases a record before its due time only
// when that time is beyond MAX_DUE_AHEAD (see dueAt). Otherwise the error
// says what is wrong, and the Meta is what could be salvaged for the dead
// letter.
func (h *headerReader) read(msg kafka.Message, now time.Time) (retrymeta.Meta, error) {
	meta, err := retrymeta.ParseRetry(msg.Headers)
	if err != nil {
		return salvage(msg.Headers), fmt.Errorf("read retry headers of %s/%d@%d: %w", msg.Topic, msg.Partition, msg.Offset, err)
	}
	if ahead := meta.DueAt.Sub(now); ahead > 0 {
		return meta, failure.NewPermanent("poison-headers", fmt.Errorf(
			"read retry headers of %s/%d@%d: header %s is %s ahead; it was beyond MAX_DUE_AHEAD (%s) when fetched: a clock far ahead or a forged header",
			msg.Topic, msg.Partition, msg.Offset, retrymeta.HeaderDueAt, ahead, h.maxDueAhead))
	}
	return meta, nil
}

// salvage keeps, for the dead letter of a record whose retry headers are
// incomplete or partly garbage, what can still be read: every header
// that parses on its own (the attempt count, the first failure time, the
// redrive count...). The original coordinates are kept only when topic,
// partition and offset all are; otherwise they are dropped and the
// hand-off records the record's own coordinates, so that the dead letter
// always names a place the record really was.
func salvage(h []kafka.Header) retrymeta.Meta {
	var readable []kafka.Header
	for _, hd := range h {
		if _, err := retrymeta.Parse([]kafka.Header{hd}); err == nil {
			readable = append(readable, hd)
		}
	}
	m, err := retrymeta.Parse(readable)
	if err != nil {
		// Each header parsed alone; together they cannot fail. Keep the
		// dead letter going with nothing salvaged rather than lose it.
		return retrymeta.Meta{}
	}
	for _, name := range []string{retrymeta.HeaderOriginalTopic, retrymeta.HeaderOriginalPartition, retrymeta.HeaderOriginalOffset} {
		if _, ok := retrymeta.Get(readable, name); !ok {
			m.OriginalTopic, m.OriginalPartition, m.OriginalOffset, m.OriginalTimestamp = "", 0, 0, time.Time{}
			break
		}
	}
	return m
}
