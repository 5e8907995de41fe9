package orders

import (
	"context"

	"github.com/reeferdlq/reefer-dlq/pkg/reefer/allocation"
)

// Ledger holds each order's one authoritative state (package allocation's
// State) and changes it only by compare-and-set transitions, so that of
// two chains of one order only one concludes it. *reeferstore.Store
// satisfies it; allocbatch.Ledger batches its MarkAllocated.
//
// Why an order can have two chains: order-retry publishes attempt n+1 and
// only then commits attempt n, and records wait for their due time, so
// its committed offset lags behind every waiting record. Every rebalance,
// rolling deploy or crash therefore re-reads up to MAX_PENDING records
// whose next attempts are already on the retry topic: each becomes a
// second chain of its order, running at nearly the same time as the
// first. The Ledger makes that harmless; see [Processor.Process].
//
// The reservation itself (none or reopened -> reserved) is the Allocator's
// store call: it refuses a dead-lettered order with allocation.ErrConcluded.
type Ledger interface {
	// MarkAllocated moves the order from reserved to allocated if it
	// still holds containerID. won is false when another chain
	// dead-lettered it meanwhile.
	MarkAllocated(ctx context.Context, orderID, containerID string) (won bool, err error)
	// DeadLetter claims the order's dead letter and releases (or
	// quarantines) its reefer in the same transaction; see
	// allocation.ClaimOutcome for the answers.
	DeadLetter(ctx context.Context, orderID string, claim allocation.Claim) (allocation.ClaimResult, error)
	// MarkDeadLetterWritten records that the dead letter of the claim
	// token holds reached the dead-letter topic (Claim.Written): the
	// claiming record, read again, then writes nothing. A claim of
	// another token, or none, is left alone.
	MarkDeadLetterWritten(ctx context.Context, orderID, token string) error
	// TakeOverClaim moves the order's dead-letter claim from oldToken to
	// token (and owner) if its dead letter is still not written: the
	// claiming process died, and another record writes it. won is false
	// when the claim changed meanwhile.
	TakeOverClaim(ctx context.Context, orderID, oldToken, token, owner string) (won bool, err error)
	// Reopen moves a dead-lettered order to reopened when generation (a
	// redriven record's x-dlq-redrive-count) is above the order's.
	Reopen(ctx context.Context, orderID string, generation int) (reopened bool, err error)
	// Order returns the order's state; ok is false when it has none.
	Order(ctx context.Context, orderID string) (o allocation.Order, ok bool, err error)
}
