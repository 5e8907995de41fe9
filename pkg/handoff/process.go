package handoff

import (
	"context"
	"errors"
	"fmt"

	"github.com/segmentio/kafka-go"

	"github.com/reeferdlq/reefer-dlq/pkg/allocation"
	"github.com/reeferdlq/reefer-dlq/pkg/events"
	"github.com/reeferdlq/reefer-dlq/pkg/retrymeta"
)

// Allocator runs the allocation use case for one order.
// allocation.Service satisfies it.
type Allocator interface {
	Allocate(ctx context.Context, order events.OrderCreated) (allocation.Result, error)
}

// Processor is the whole per-record work that reefer-manager and
// order-retry share: decode the OrderCreated, run the allocation, route the
// outcome. Create it with a struct literal; Allocator and Router are
// required.
type Processor struct {
	Allocator Allocator
	Router    *Router
	// SkipOtherTypes makes a well-formed event of another type than
	// OrderCreated a RouteSkipped decision instead of a poison record.
	// reefer-manager sets it: the orders topic also carries the events it
	// emits itself. order-retry leaves it false: its topic should only
	// ever hold orders.
	SkipOtherTypes bool
}

// ErrInterrupted is wrapped by the error Process returns when ctx ended
// while the order was being allocated. Nothing was handed off: the record
// is not done and must not be committed; it will be processed again after
// a restart or rebalance.
var ErrInterrupted = errors.New("processing interrupted")

// Process runs one record through decode -> allocate -> hand-off.
//
// prev is the record's retry metadata, already parsed by the caller (the
// zero Meta for a record read from the orders topic). A caller that cannot
// parse the headers hands the record to [Router.Poison] instead.
//
// A nil error means the record is concluded and its offset may be
// committed; the Decision says which way it went. A non-nil error means
// the hand-off did not happen (the write failed, or ctx ended): do not
// commit the record.
func (p *Processor) Process(ctx context.Context, in kafka.Message, prev retrymeta.Meta) (Decision, error) {
	env, err := events.Decode(in.Value)
	if err != nil {
		return p.Router.Poison(ctx, in, prev, fmt.Errorf("decode record %s: %w", coordinates(in), err))
	}
	if env.Type != events.TypeOrderCreated && p.SkipOtherTypes {
		return Decision{Route: RouteSkipped, OrderID: env.Subject}, nil
	}
	order, err := events.DecodeData[events.OrderCreated](env)
	if err != nil {
		d, herr := p.Router.Poison(ctx, in, prev, fmt.Errorf("decode record %s: %w", coordinates(in), err))
		d.OrderID = env.Subject
		return d, herr
	}

	res, err := p.Allocator.Allocate(ctx, order)
	if err != nil {
		// When the caller is shutting down, the failure is ours, not the
		// order's: do not spend one of its attempts on it.
		if ctx.Err() != nil {
			return Decision{OrderID: order.OrderID}, fmt.Errorf("order %s: %w: %w", order.OrderID, ErrInterrupted, err)
		}
		d, herr := p.Router.Fail(ctx, in, prev, err)
		d.OrderID = order.OrderID
		return d, herr
	}
	return p.Router.Emit(ctx, in, res)
}

// coordinates names a record in logs and errors: topic/partition@offset.
func coordinates(m kafka.Message) string {
	return fmt.Sprintf("%s/%d@%d", m.Topic, m.Partition, m.Offset)
}
