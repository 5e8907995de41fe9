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

// handler is the consumer handler: it runs one due record through the
// shared decode -> allocate -> hand-off steps (orders.Processor), or
// dead-letters it as poison when its retry headers cannot be trusted,
// plus this service's metrics and logs.
type handler struct {
	log       *slog.Logger
	metrics   *metrics
	processor *orders.Processor
	// maxDueAhead is MAX_DUE_AHEAD (see dueAt).
	maxDueAhead time.Duration
	now         func() time.Time
}

// handle returns nil once the record's outcome is acknowledged by the
// broker (success events, the republished retry, or the dead letter); an
// error makes the consumer try the same record again and keeps its offset
// uncommitted.
func (h *handler) handle(ctx context.Context, msg kafka.Message) error {
	start := h.now()
	prev, err := h.readHeaders(msg, start)
	var (
		d       orders.Decision
		attempt int // this attempt's number; 0 when the headers cannot be read
	)
	if err != nil {
		d.Decision, err = h.processor.Router.Poison(ctx, msg, prev, err)
	} else {
		attempt = prev.Attempt + 1
		h.metrics.started(attempt)
		d, err = h.processor.Process(ctx, msg, prev)
	}
	if errors.Is(err, orders.ErrInterrupted) {
		return err // shutting down: not a failure of the record, nor of the hand-off
	}
	h.metrics.observe(d, err, attempt, h.now().Sub(start))
	if err != nil {
		return err
	}
	h.metrics.handoff.Observe(d.Decision)

	attrs := []any{"key", string(msg.Key), "partition", msg.Partition, "offset", msg.Offset}
	if d.Concluded != "" {
		// A duplicate chain of an order that already concluded; rare (it
		// takes a crash), so worth a line.
		h.log.InfoContext(ctx, "retry of an already concluded order", append(attrs, "attempt", attempt, "concluded", d.Concluded, "route", d.Route)...)
		return nil
	}
	switch d.Route {
	case handoff.RouteDeadLetter:
		// d.Attempt is the dead letter's x-retry-attempt, also for poison.
		h.log.WarnContext(ctx, "order dead-lettered", append(attrs, "attempt", d.Attempt, "reason", d.Reason, "error", d.Err)...)
	case handoff.RouteRetry:
		// Debug, not Info: during an outage every retry takes this route,
		// and records_retried_total already counts them.
		h.log.DebugContext(ctx, "order failed again; republished", append(attrs, "attempt", d.Attempt, "next_due_at", d.DueAt, "delay", d.Delay, "error", d.Err)...)
	default:
		// Debug too: after an outage every order passes here, and
		// successes_total counts them by attempt.
		h.log.DebugContext(ctx, "order concluded by a retry", append(attrs, "attempt", attempt, "route", d.Route, "container_id", d.ContainerID)...)
	}
	return nil
}

// readHeaders reads the retry metadata of msg. A record on the retry topic
// must carry a complete, valid set (retrymeta.ParseRetry) with a due time
// that has come: the scheduler releases a record before its due time only
// when that time is beyond MAX_DUE_AHEAD (see dueAt). Otherwise the error
// says what is wrong, and the Meta is what could be salvaged for the dead
// letter.
func (h *handler) readHeaders(msg kafka.Message, now time.Time) (retrymeta.Meta, error) {
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
