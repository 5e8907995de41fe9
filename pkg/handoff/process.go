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
	// Ledger, when set, records each order's conclusion so that a stale
	// duplicate retry chain is dropped instead of dead-lettering an order
	// that is allocated (see Ledger and Process). nil disables the checks.
	Ledger Ledger
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
//
// With a Ledger, an order's conclusion is recorded so that of two chains
// of one order (see Ledger) only one conclusion wins, and allocation wins
// over a dead letter:
//
//   - A successful allocation is marked before its events are written, so
//     a crash in between leaves an order that every later record of it
//     re-emits (never one that was allocated but silently dropped).
//   - A retry record (prev.Attempt > 0, or redriven) of an order concluded
//     "allocated" does not allocate again: it re-emits the success events
//     (same event ids, so consumers drop the duplicates). So does a retry
//     whose attempts ran out while another chain allocated the order: it
//     is not dead-lettered.
//   - A retry record of an order concluded "dead-lettered" by a chain
//     redriven at least as often is skipped (RouteSkipped). An operator's
//     redrive raises x-dlq-redrive-count, so a real redrive runs.
//   - A retry record that is dead-lettered marks its order dead-lettered.
//
// Decision.Concluded is set when a record met an earlier conclusion. A
// Ledger error is returned like a failed write: the record is processed
// again (at worst its dead letter is written twice, as a crash can
// already cause). First attempts (reefer-manager) only mark allocations.
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

	// A record from the retry topic; only these can belong to a duplicate
	// chain (the orders topic is read once, by reefer-manager).
	retry := p.Ledger != nil && (prev.Attempt > 0 || prev.RedriveCount > 0)
	if retry {
		if d, done, err := p.concluded(ctx, in, order.OrderID, prev.RedriveCount, false); done || err != nil {
			return d, err
		}
	}

	res, err := p.Allocator.Allocate(ctx, order)
	if err != nil {
		// When the caller is shutting down, the failure is ours, not the
		// order's: do not spend one of its attempts on it.
		if ctx.Err() != nil {
			return Decision{OrderID: order.OrderID}, fmt.Errorf("order %s: %w: %w", order.OrderID, ErrInterrupted, err)
		}
		return p.fail(ctx, in, prev, order.OrderID, retry, err)
	}
	if p.Ledger != nil && res.Outcome == allocation.Allocated {
		// Before the events: see Process.
		if err := p.Ledger.MarkAllocated(ctx, order.OrderID); err != nil {
			return Decision{OrderID: order.OrderID}, fmt.Errorf("order %s: %w", order.OrderID, err)
		}
	}
	return p.Router.Emit(ctx, in, res)
}

// fail hands a failed record off; for a retry record that would be
// dead-lettered, the Ledger decides first (see Process).
func (p *Processor) fail(ctx context.Context, in kafka.Message, prev retrymeta.Meta, orderID string, retry bool, cause error) (Decision, error) {
	plan := p.Router.planFailure(in, prev, cause)
	deadLetter := retry && plan.decision.Route == RouteDeadLetter
	if deadLetter {
		if d, done, err := p.concluded(ctx, in, orderID, prev.RedriveCount, true); done || err != nil {
			return d, err
		}
	}
	d, err := plan.write(ctx)
	d.OrderID = orderID
	if err == nil && deadLetter {
		if err := p.Ledger.MarkDeadLettered(ctx, orderID, prev.RedriveCount); err != nil {
			return d, fmt.Errorf("order %s: %w", orderID, err)
		}
	}
	return d, err
}

// concluded concludes a retry record of an order that already has a
// conclusion: allocated -> re-emit the success events; dead-lettered by a
// chain redriven at least redriveCount times (unless onlyAllocated) ->
// skip. done is false when the record must run on.
func (p *Processor) concluded(ctx context.Context, in kafka.Message, orderID string, redriveCount int, onlyAllocated bool) (d Decision, done bool, err error) {
	outcome, concludedRedrives, ok, err := p.Ledger.Conclusion(ctx, orderID)
	if err != nil {
		return Decision{OrderID: orderID}, false, fmt.Errorf("order %s: %w", orderID, err)
	}
	switch {
	case ok && outcome == ConclusionAllocated:
		containerID, ok, err := p.Ledger.Allocation(ctx, orderID)
		if err != nil {
			return Decision{OrderID: orderID}, false, fmt.Errorf("order %s: %w", orderID, err)
		}
		if !ok {
			// Not expected (allocations are never undone): let the record
			// run on and allocate again.
			return Decision{}, false, nil
		}
		d, err := p.Router.Emit(ctx, in, allocation.Result{Outcome: allocation.Allocated, OrderID: orderID, ContainerID: containerID})
		d.Concluded = outcome
		return d, true, err
	case ok && !onlyAllocated && outcome == ConclusionDeadLettered && concludedRedrives >= redriveCount:
		return Decision{Route: RouteSkipped, OrderID: orderID, Concluded: outcome}, true, nil
	}
	return Decision{}, false, nil
}

// coordinates names a record in logs and errors: topic/partition@offset.
func coordinates(m kafka.Message) string {
	return fmt.Sprintf("%s/%d@%d", m.Topic, m.Partition, m.Offset)
}
