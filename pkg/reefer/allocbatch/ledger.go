package allocbatch

import (
	"context"
	"fmt"

	"github.com/reeferdlq/reefer-dlq/pkg/reefer/allocation"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/orders"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/reeferstore"
)

// LedgerStore is what Ledger needs from the reefer store.
// *reeferstore.Store satisfies it.
type LedgerStore interface {
	orders.Ledger
	MarkAllocatedBatch(ctx context.Context, reservations []reeferstore.Reservation) ([]bool, error)
}

// Ledger is a orders.Ledger whose MarkAllocated, called once for every
// allocated order, gathers the marks of concurrent callers into
// LedgerStore.MarkAllocatedBatch calls. Its other methods go straight to
// the store: they run only for orders that are dead-lettered or redriven,
// which is rare. MarkAllocated waits until Run serves it, so start Run
// before the first record.
type Ledger struct {
	store                                   LedgerStore
	gatherer[reeferstore.Reservation, bool] // answers: whether the mark won
}

// NewLedger returns a Ledger over store that marks at most maxBatch
// orders in one statement (DefaultMaxBatch when maxBatch <= 0).
func NewLedger(store LedgerStore, maxBatch int) *Ledger {
	return &Ledger{store: store, gatherer: newGatherer[reeferstore.Reservation, bool](maxBatch)}
}

// MarkDeadLetterWritten is the store's MarkDeadLetterWritten, within
// DefaultTimeout.
func (l *Ledger) MarkDeadLetterWritten(ctx context.Context, orderID, token string) error {
	ctx, cancel := withDeadline(ctx, l.timeout)
	defer cancel()
	return l.store.MarkDeadLetterWritten(ctx, orderID, token)
}

// TakeOverClaim is the store's TakeOverClaim, within DefaultTimeout.
func (l *Ledger) TakeOverClaim(ctx context.Context, orderID, oldToken, token, owner string) (bool, error) {
	ctx, cancel := withDeadline(ctx, l.timeout)
	defer cancel()
	return l.store.TakeOverClaim(ctx, orderID, oldToken, token, owner)
}

// DeadLetter is the store's DeadLetter, within DefaultTimeout.
func (l *Ledger) DeadLetter(ctx context.Context, orderID string, claim allocation.Claim) (allocation.ClaimResult, error) {
	ctx, cancel := withDeadline(ctx, l.timeout)
	defer cancel()
	return l.store.DeadLetter(ctx, orderID, claim)
}

// Reopen is the store's Reopen, within DefaultTimeout.
func (l *Ledger) Reopen(ctx context.Context, orderID string, generation int) (bool, error) {
	ctx, cancel := withDeadline(ctx, l.timeout)
	defer cancel()
	return l.store.Reopen(ctx, orderID, generation)
}

// Order is the store's Order, within DefaultTimeout.
func (l *Ledger) Order(ctx context.Context, orderID string) (allocation.Order, bool, error) {
	ctx, cancel := withDeadline(ctx, l.timeout)
	defer cancel()
	return l.store.Order(ctx, orderID)
}

// MarkAllocated queues the mark for the next batch and waits for the
// batch's answer.
func (l *Ledger) MarkAllocated(ctx context.Context, orderID, containerID string) (bool, error) {
	return l.ask(ctx, reeferstore.Reservation{OrderID: orderID, ContainerID: containerID}, "mark order "+orderID+" allocated")
}

// Run serves batches, one at a time, until ctx ends; then Done closes.
func (l *Ledger) Run(ctx context.Context) {
	reservations := make([]reeferstore.Reservation, 0, l.maxBatch)
	l.run(ctx, func(ctx context.Context, batch []pending[reeferstore.Reservation, bool]) {
		reservations = reservations[:0]
		for _, r := range batch {
			reservations = append(reservations, r.req)
		}
		bctx, cancel := withDeadline(ctx, l.timeout)
		won, err := l.store.MarkAllocatedBatch(bctx, reservations)
		cancel()
		if err != nil {
			err = fmt.Errorf("mark %d orders allocated: %w", len(reservations), err)
		}
		for i, r := range batch {
			if err != nil {
				r.reply <- answer[bool]{err: err}
				continue
			}
			r.reply <- answer[bool]{rep: won[i]}
		}
	})
}

// Done is closed when Run has returned.
func (l *Ledger) Done() <-chan struct{} { return l.done }
