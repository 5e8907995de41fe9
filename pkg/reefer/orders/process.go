package orders

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/failure"
	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/handoff"
	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/retrymeta"
	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/tracing"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/allocation"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/events"
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
	// Ledger holds each order's state, so that of two chains of one order
	// only one concludes it (see Ledger and Process). Its store must be
	// the Allocator's. nil disables the checks: every record is processed
	// on its own (tests of the routing only).
	Ledger Ledger
	// Releaser gives the reefer of a dead-lettered attempt back to the
	// pool, first releasing it in the inventory (see
	// allocation.Releaser): at once after the dead letter, and before a
	// redrive reopens the order. nil leaves every such reefer pending
	// release, and a redriven order waiting for one (tests of the routing
	// only).
	Releaser Releaser
	// ClaimLease is how long a dead-letter claim belongs to the delivery
	// that made it. Another delivery of the same record (a rebalance
	// re-reads records that still wait in this or another process) finds
	// the claim and, while the lease runs and the dead letter is not
	// marked written, waits (Process returns ErrClaimInProgress) instead
	// of writing a second copy; after it, it takes the claim over: the
	// first delivery died before its write. Keep it above the writer's
	// timeout. Default DefaultClaimLease.
	ClaimLease time.Duration
	// ReadHeaders reads the retry metadata of a record, at now: for the
	// orders topic retrymeta.FirstAttempt (the default, when nil), for
	// the retry topic a complete set whose due time has come. An error
	// makes the record poison: Handle dead-letters it with the Meta
	// returned, what could be salvaged.
	ReadHeaders func(msg kafka.Message, now time.Time) (retrymeta.Meta, error)
	// Observe learns the outcome of every record Handle ran: the
	// service's metrics and logs. ctx is the record's (with its span:
	// log with it, and the line carries the trace id). nil observes
	// nothing.
	Observe func(ctx context.Context, h Handled)

	// Deliveries of one record run one at a time in this process (see
	// serialize), under this process's claim owner id.
	mu      sync.Mutex
	running map[string]chan struct{} // by record token; closed when done
	owner   string
}

// Releaser releases reefers in the inventory and then in the database;
// allocation.Releaser satisfies it.
type Releaser interface {
	// TryRelease releases one reefer, or leaves it to the next sweep.
	TryRelease(ctx context.Context, r allocation.Reservation)
	// ReleaseOrder releases every reefer pending release for the order.
	ReleaseOrder(ctx context.Context, orderID string) error
}

// DefaultClaimLease is Processor.ClaimLease's default: above the
// hand-off writer's 10 s timeout, short enough that a crash between a
// claim and its write delays that dead letter by seconds, not minutes.
const DefaultClaimLease = 20 * time.Second

// ErrClaimInProgress is wrapped by the error Process returns when another
// delivery of the same record claimed the order's dead letter moments ago
// and has not written it yet. Like a failed write, the record is not
// done: the caller processes it again, and then finds the dead letter
// written (and writes nothing) or the lease over (and writes it).
var ErrClaimInProgress = errors.New("another delivery of this record is writing its dead letter")

// ErrInterrupted is wrapped by the error Process returns when ctx ended
// while the order was being allocated. Nothing was handed off: the record
// is not done and must not be committed; it will be processed again after
// a restart or rebalance.
var ErrInterrupted = errors.New("processing interrupted")

// Handled is what Handle tells Observe about one record.
type Handled struct {
	Record kafka.Message
	// Attempt is this attempt's number (the first is 1); 0 when the
	// record's headers could not be read and it was dead-lettered as
	// poison.
	Attempt int
	// Decision is which way the record went, valid when Err is nil.
	Decision Decision
	// Err is the error Handle returns: the hand-off did not happen.
	Err error
	// Took is the time from the start of Handle to the acknowledged
	// hand-off.
	Took time.Duration
}

// Handle is the consumer's handler (a consumer.Handler): it reads the
// record's retry headers, runs the record through Process (or hands it
// off as poison when its headers cannot be trusted), and tells Observe.
// It returns nil once the record's outcome is acknowledged by the broker
// (success events, the retry record, or the dead letter); an error makes
// the consumer try the same record again and keeps its offset
// uncommitted.
func (p *Processor) Handle(ctx context.Context, in kafka.Message) error {
	start := time.Now()
	read := p.ReadHeaders
	if read == nil {
		read = firstAttempt
	}
	h := Handled{Record: in}
	prev, err := read(in, start)
	if err != nil {
		h.Decision.Decision, h.Err = p.Router.Poison(ctx, in, prev, err)
	} else {
		h.Attempt = prev.Attempt + 1
		h.Decision, h.Err = p.Process(ctx, in, prev)
	}
	h.Took = time.Since(start)
	if h.Err == nil {
		// The attempt's span says where the record went.
		tracing.Route(ctx, string(h.Decision.Route))
	}
	if p.Observe != nil {
		p.Observe(ctx, h)
	}
	return h.Err
}

// firstAttempt reads the headers of a record on the orders topic, which
// has never failed: the first failure is attempt 1. A record redriven
// there (dlq redrive --to original) keeps its redrive count, which
// reopens its order and is the loop guard.
func firstAttempt(msg kafka.Message, _ time.Time) (retrymeta.Meta, error) {
	meta, err := retrymeta.FirstAttempt(msg.Headers)
	if err != nil {
		return retrymeta.Meta{}, fmt.Errorf("read headers of record %s: %w", coordinates(msg), err)
	}
	return meta, nil
}

// Process runs one record through decode -> allocate -> hand-off.
//
// prev is the record's retry metadata, already parsed by the caller; for
// a record read from the orders topic, what retrymeta.FirstAttempt keeps
// (the redrive count of a record redriven there). A caller that cannot
// parse the headers hands the record to [Router.Poison] instead.
//
// A nil error means the record is concluded and its offset may be
// committed; the Decision says which way it went. A non-nil error means
// the hand-off did not happen (the write failed, or ctx ended): do not
// commit the record.
//
// With a Ledger, every conclusion is first won in the database by a
// compare-and-set, and only then written to Kafka:
//
//   - a redriven record (x-dlq-redrive-count above the order's generation)
//     reopens its dead-lettered order first;
//   - the Allocator reserves a reefer (none or reopened -> reserved); for
//     a dead-lettered order it refuses, and the record is a stale chain's
//     (RouteSkipped), unless this very record claimed the dead letter
//     before a crash: then the dead letter is written again;
//   - after the inventory call, reserved -> allocated, then the success
//     events. An order already allocated re-emits them (same event ids);
//     a lost mark (another chain dead-lettered the order meanwhile) is a
//     stale chain's;
//   - a dead letter is claimed (-> dead-lettered, reefer released or
//     quarantined) before it is written, and marked written after; a
//     claim refused because the order is allocated writes the success
//     events instead, one refused because another chain dead-lettered it
//     writes nothing, and the claiming record read again writes its dead
//     letter again only if it is not marked written.
//
// Decision.Concluded is set when a record met its order concluded by
// another chain. A Ledger error is returned like a failed write: the
// record is processed again.
func (p *Processor) Process(ctx context.Context, in kafka.Message, prev retrymeta.Meta) (Decision, error) {
	if p.Ledger != nil {
		release, err := p.serialize(ctx, coordinates(in))
		if err != nil {
			return Decision{}, fmt.Errorf("record %s: %w: %w", coordinates(in), ErrInterrupted, err)
		}
		defer release()
	}
	env, err := events.Decode(in.Value)
	if err != nil {
		d, herr := p.Router.Poison(ctx, in, prev, fmt.Errorf("decode record %s: %w", coordinates(in), err))
		return decided(d, ""), herr
	}
	if env.Type != events.TypeOrderCreated && p.SkipOtherTypes {
		return decided(handoff.Decision{Route: handoff.RouteSkipped}, env.Subject), nil
	}
	order, err := events.DecodeData[events.OrderCreated](env)
	if err != nil {
		d, herr := p.Router.Poison(ctx, in, prev, fmt.Errorf("decode record %s: %w", coordinates(in), err))
		return decided(d, env.Subject), herr
	}

	if p.Ledger != nil && prev.RedriveCount > 0 {
		pending, err := p.reopen(ctx, order.OrderID, prev.RedriveCount)
		if pending {
			// The inventory may still hold the order's earlier reefer and
			// cannot release it now: an attempt that failed, retried later
			// (after the inventory's Retry-After or the breaker's, which
			// err carries).
			return p.fail(ctx, in, prev, order.OrderID, err)
		}
		if err != nil {
			return Decision{OrderID: order.OrderID}, fmt.Errorf("order %s: %w", order.OrderID, err)
		}
	}
	res, err := p.Allocator.Allocate(ctx, order)
	if p.Ledger != nil && errors.Is(err, allocation.ErrConcluded) {
		return p.deadLettered(ctx, in, prev, order.OrderID)
	}
	if err != nil {
		// When the caller is shutting down, the failure is ours, not the
		// order's: do not spend one of its attempts on it.
		if ctx.Err() != nil {
			return Decision{OrderID: order.OrderID}, fmt.Errorf("order %s: %w: %w", order.OrderID, ErrInterrupted, err)
		}
		return p.fail(ctx, in, prev, order.OrderID, err)
	}
	if p.Ledger != nil && res.Outcome == allocation.Allocated {
		// Before the events: a crash in between leaves an allocated order
		// whose record, processed again, re-emits them.
		won, err := p.Ledger.MarkAllocated(ctx, order.OrderID, res.ContainerID)
		if err != nil {
			return Decision{OrderID: order.OrderID}, fmt.Errorf("order %s: %w", order.OrderID, err)
		}
		if !won {
			// The inventory has just recorded the reefer for an order
			// another chain dead-lettered: release it there.
			p.tryRelease(ctx, order.OrderID, res.ContainerID)
			return Decision{Decision: handoff.Decision{Route: handoff.RouteSkipped}, OrderID: order.OrderID, Concluded: allocation.StateDeadLettered}, nil
		}
	}
	return p.Router.Emit(ctx, in, res)
}

// fail hands a failed record off; a dead letter is claimed in the Ledger
// first (see Process).
func (p *Processor) fail(ctx context.Context, in kafka.Message, prev retrymeta.Meta, orderID string, cause error) (Decision, error) {
	plan := p.Router.Plan(in, prev, cause)
	if p.Ledger == nil || plan.Decision.Route != handoff.RouteDeadLetter {
		hd, err := plan.Write(ctx)
		d := decided(hd, orderID)
		if err != nil || p.Ledger == nil || d.Route != handoff.RouteDeadLetter {
			return d, err
		}
		// The retry topic refused the record for good (too large, or
		// invalid), so the router dead-lettered it instead. The claim comes
		// after the write here, as the refusal is known only then; a crash
		// in between re-runs the record, which is refused and dead-lettered
		// again, and then claims with the same token.
		got, err := p.Ledger.DeadLetter(ctx, orderID, p.claimOf(in, prev, cmpErr(d.Err, cause)))
		if err != nil {
			return d, fmt.Errorf("order %s: %w", orderID, err)
		}
		d.Released, d.Quarantined = got.Released, got.Quarantined
		if got.Outcome == allocation.ClaimGranted {
			p.tryRelease(ctx, orderID, got.Released)
			return d, p.markWritten(ctx, in, orderID)
		}
		return d, nil
	}
	got, err := p.Ledger.DeadLetter(ctx, orderID, p.claimOf(in, prev, cause))
	if err != nil {
		return Decision{OrderID: orderID}, fmt.Errorf("order %s: %w", orderID, err)
	}
	switch got.Outcome {
	case allocation.ClaimAllocated:
		d, err := p.Router.Emit(ctx, in, allocation.Result{Outcome: allocation.Allocated, OrderID: orderID, ContainerID: got.ContainerID})
		d.Concluded = allocation.StateAllocated
		return d, err
	case allocation.ClaimStale:
		// Another chain's claim: skipped, unless that claim was never
		// written (see deadLettered).
		return p.deadLettered(ctx, in, prev, orderID)
	}
	if got.Repeated {
		if err := p.rewrite(got.Claim, orderID); err != nil {
			return Decision{OrderID: orderID}, err
		}
		if got.Claim.Written {
			return Decision{Decision: handoff.Decision{Route: handoff.RouteSkipped}, OrderID: orderID, Concluded: allocation.StateDeadLettered}, nil
		}
	}
	p.tryRelease(ctx, orderID, got.Released)
	hd, err := plan.Write(ctx)
	d := decided(hd, orderID)
	d.Released, d.Quarantined = got.Released, got.Quarantined
	if err != nil {
		return d, err
	}
	return d, p.markWritten(ctx, in, orderID)
}

// reopen reopens a redriven order; when the reefer of its dead-lettered
// attempt is still pending release, it releases it first and tries once
// more. pending is true when the reefer could not be released: err is
// then the failure to route, the release's own when it failed (with the
// inventory's class and Retry-After), else one wrapping
// allocation.ErrReleasePending.
func (p *Processor) reopen(ctx context.Context, orderID string, generation int) (pending bool, err error) {
	_, err = p.Ledger.Reopen(ctx, orderID, generation)
	if !errors.Is(err, allocation.ErrReleasePending) {
		return false, err
	}
	if p.Releaser == nil {
		return true, err
	}
	if rerr := p.Releaser.ReleaseOrder(ctx, orderID); rerr != nil {
		return true, fmt.Errorf("reopen order %s: its earlier reefer is not released in the inventory yet: %w", orderID, rerr)
	}
	_, err = p.Ledger.Reopen(ctx, orderID, generation)
	return errors.Is(err, allocation.ErrReleasePending), err
}

// tryRelease gives a dead-lettered attempt's reefer back, or leaves it
// pending release for the next sweep.
func (p *Processor) tryRelease(ctx context.Context, orderID, containerID string) {
	if p.Releaser != nil && containerID != "" {
		p.Releaser.TryRelease(ctx, allocation.Reservation{OrderID: orderID, ContainerID: containerID})
	}
}

// serialize waits until no other delivery of the record token names runs
// in this process, and marks this one running until release. A rebalance
// re-reads records that still wait for their due time here, so two
// copies of one record can come due together: run side by side, both
// found the dead-letter claim theirs and wrote it twice. One after the
// other, the second finds it written.
func (p *Processor) serialize(ctx context.Context, token string) (release func(), err error) {
	for {
		p.mu.Lock()
		if p.running == nil {
			p.running = make(map[string]chan struct{})
		}
		busy, ok := p.running[token]
		if !ok {
			done := make(chan struct{})
			p.running[token] = done
			p.mu.Unlock()
			return func() {
				p.mu.Lock()
				delete(p.running, token)
				p.mu.Unlock()
				close(done)
			}, nil
		}
		p.mu.Unlock()
		select {
		case <-busy:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// ownerID is this Processor's claim owner: random, made once.
func (p *Processor) ownerID() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.owner == "" {
		p.owner = rand.Text()
	}
	return p.owner
}

// rewrite says whether this delivery of the record that made claim may
// write its dead letter (again): not while a delivery in another process
// may still be writing it (the claim is that process's, younger than
// ClaimLease and not marked written).
func (p *Processor) rewrite(claim allocation.Claim, orderID string) error {
	if claim.Written || claim.Owner == p.ownerID() {
		// Written: the caller skips. Ours: this process's earlier
		// delivery failed its write, and no other one runs (serialize).
		return nil
	}
	return p.leaseOver(claim, orderID)
}

// leaseOver returns ErrClaimInProgress while claim is younger than
// ClaimLease: its delivery may still be writing the dead letter.
func (p *Processor) leaseOver(claim allocation.Claim, orderID string) error {
	lease := p.ClaimLease
	if lease <= 0 {
		lease = DefaultClaimLease
	}
	if age := p.Router.now().Sub(claim.ClaimedAt); age < lease {
		return fmt.Errorf("order %s: claimed %s ago: %w", orderID, age.Round(time.Millisecond), ErrClaimInProgress)
	}
	return nil
}

// markWritten records that the dead letter of record in's claim is on
// the dead-letter topic, so that the record, read again after a
// rebalance, does not write it a second time. When the mark fails the
// record is not committed and is processed again: its dead letter is
// then written again, with the same x-dlq-original-* coordinates (a
// duplicate only a database failure between the write and the mark can
// cause).
func (p *Processor) markWritten(ctx context.Context, in kafka.Message, orderID string) error {
	if err := p.Ledger.MarkDeadLetterWritten(ctx, orderID, coordinates(in)); err != nil {
		return fmt.Errorf("order %s: dead letter written: %w", orderID, err)
	}
	return nil
}

// claimOf is the dead-letter claim of record in for cause: its token is
// the record's coordinates, so the same record processed again finds its
// own claim.
func (p *Processor) claimOf(in kafka.Message, prev retrymeta.Meta, cause error) allocation.Claim {
	claim := allocation.Claim{
		Token:        coordinates(in),
		Owner:        p.ownerID(),
		Generation:   prev.RedriveCount,
		ErrorClass:   failure.ClassOf(cause),
		ErrorReason:  failure.ReasonOf(cause),
		ErrorMessage: cause.Error(),
	}
	claim.Quarantine, _ = allocation.RefusedContainer(cause)
	return claim
}

// deadLettered concludes a record whose order the store found
// dead-lettered: a stale chain's record is skipped; the record that
// claimed the dead letter (processed again after a crash between the
// claim and the write, or a failed write) writes it again.
func (p *Processor) deadLettered(ctx context.Context, in kafka.Message, prev retrymeta.Meta, orderID string) (Decision, error) {
	o, ok, err := p.Ledger.Order(ctx, orderID)
	if err != nil {
		return Decision{OrderID: orderID}, fmt.Errorf("order %s: %w", orderID, err)
	}
	if !ok || o.State != allocation.StateDeadLettered || o.Claim.Written {
		return Decision{Decision: handoff.Decision{Route: handoff.RouteSkipped}, OrderID: orderID, Concluded: allocation.StateDeadLettered}, nil
	}
	token := coordinates(in)
	if o.Claim.Token == token {
		if err := p.rewrite(o.Claim, orderID); err != nil {
			return Decision{OrderID: orderID}, err
		}
	} else if err := p.leaseOver(o.Claim, orderID); err != nil {
		return Decision{OrderID: orderID}, err
	}
	if o.Claim.Token != token {
		// Another record claimed the dead letter and, past the lease, has
		// not written it: its process died, and its record may never come
		// back (a later delivery failed earlier and went to the retry
		// topic). This chain, of the same redrive generation, takes the
		// claim over and writes the dead letter, or the order would be
		// dead-lettered in the database and nowhere else.
		if prev.RedriveCount != o.Generation {
			return Decision{Decision: handoff.Decision{Route: handoff.RouteSkipped}, OrderID: orderID, Concluded: allocation.StateDeadLettered}, nil
		}
		won, err := p.Ledger.TakeOverClaim(ctx, orderID, o.Claim.Token, token, p.ownerID())
		if err != nil {
			return Decision{OrderID: orderID}, fmt.Errorf("order %s: %w", orderID, err)
		}
		if !won {
			return Decision{Decision: handoff.Decision{Route: handoff.RouteSkipped}, OrderID: orderID, Concluded: allocation.StateDeadLettered}, nil
		}
	}
	plan := p.Router.Plan(in, prev, o.Claim.Err())
	if plan.Decision.Route != handoff.RouteDeadLetter {
		// The recorded failure was transient but this hop would retry it:
		// the claim was made at the last attempt, so dead-letter anyway.
		plan = p.Router.PlanDeadLetter(in, prev, o.Claim.Err(), retrymeta.MaxAttempts)
	}
	hd, err := plan.Write(ctx)
	d := decided(hd, orderID)
	if err != nil {
		return d, err
	}
	return d, p.markWritten(ctx, in, orderID)
}

// coordinates names a record in logs and errors, and is the token of its
// dead-letter claim: topic/partition@offset.
func coordinates(m kafka.Message) string { return handoff.Coordinates(m) }

// cmpErr is the first non-nil error.
func cmpErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
