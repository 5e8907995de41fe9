package handoff

import "context"

// Ledger remembers how each order ended, so that a duplicate retry chain
// can tell it is stale. *reeferstore.Store satisfies it.
//
// Why an order can have two chains: order-retry publishes attempt n+1 and
// only then commits attempt n. Killed in between, it reads attempt n again
// after the restart and publishes a second attempt n+1. Both chains run
// on. A chain that allocates is harmless (allocation is idempotent and
// event ids are deterministic), but a chain that runs out of attempts
// would dead-letter an order the other chain allocated. The Processor
// consults the Ledger so that allocation wins; see [Processor.Process].
type Ledger interface {
	// Conclusion returns the recorded conclusion of an order
	// (ConclusionAllocated or ConclusionDeadLettered) and, for a dead
	// letter, the x-dlq-redrive-count of the chain that wrote it. ok is
	// false when the order has no conclusion yet.
	Conclusion(ctx context.Context, orderID string) (outcome string, redriveCount int, ok bool, err error)
	// Allocation returns the reefer allocated to an order, to re-emit the
	// success events of an order concluded allocated.
	Allocation(ctx context.Context, orderID string) (containerID string, ok bool, err error)
	// MarkAllocated records that the order's allocation succeeded (the
	// database and the inventory); it is called before the success events
	// are written. It replaces a dead-lettered conclusion: success wins.
	MarkAllocated(ctx context.Context, orderID string) error
	// MarkDeadLettered records that the order was dead-lettered by a
	// chain with this redrive count. It never replaces an allocation.
	MarkDeadLettered(ctx context.Context, orderID string, redriveCount int) error
}

// The conclusions a Ledger reports.
const (
	ConclusionAllocated    = "allocated"
	ConclusionDeadLettered = "dead-lettered"
)
