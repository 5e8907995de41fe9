package allocbatch

import (
	"context"
	"fmt"
	"time"

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
	store    LedgerStore
	maxBatch int
	requests chan markRequest
	done     chan struct{} // closed when Run returns
	timeout  time.Duration // of each batch and store call; DefaultTimeout
}

type markRequest struct {
	reservation reeferstore.Reservation
	reply       chan<- markReply // buffered: Run never blocks on it
}

type markReply struct {
	won bool
	err error
}

// NewLedger returns a Ledger over store that marks at most maxBatch
// orders in one statement (DefaultMaxBatch when maxBatch <= 0).
func NewLedger(store LedgerStore, maxBatch int) *Ledger {
	return &Ledger{
		store:    store,
		maxBatch: checkMax(maxBatch),
		requests: make(chan markRequest),
		done:     make(chan struct{}),
	}
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
	reply := make(chan markReply, 1)
	req := markRequest{reservation: reeferstore.Reservation{OrderID: orderID, ContainerID: containerID}, reply: reply}
	select {
	case l.requests <- req:
	case <-ctx.Done():
		return false, fmt.Errorf("mark order %s allocated: %w", orderID, ctx.Err())
	case <-l.done:
		return false, fmt.Errorf("mark order %s allocated: %w", orderID, ErrStopped)
	}
	select {
	case r := <-reply:
		return r.won, r.err
	case <-ctx.Done():
		return false, fmt.Errorf("mark order %s allocated: %w", orderID, ctx.Err())
	}
}

// Run serves batches, one at a time, until ctx ends; then Done closes.
func (l *Ledger) Run(ctx context.Context) {
	defer close(l.done)
	batch := make([]markRequest, 0, l.maxBatch)
	reservations := make([]reeferstore.Reservation, 0, l.maxBatch)
	for {
		var ok bool
		if batch, ok = nextBatch(ctx, l.requests, batch[:0], l.maxBatch); !ok {
			return
		}
		reservations = reservations[:0]
		for _, r := range batch {
			reservations = append(reservations, r.reservation)
		}
		bctx, cancel := withDeadline(ctx, l.timeout)
		won, err := l.store.MarkAllocatedBatch(bctx, reservations)
		cancel()
		if err != nil {
			err = fmt.Errorf("mark %d orders allocated: %w", len(reservations), err)
		}
		for i, r := range batch {
			if err != nil {
				r.reply <- markReply{err: err}
				continue
			}
			r.reply <- markReply{won: won[i]}
		}
	}
}

// Done is closed when Run has returned.
func (l *Ledger) Done() <-chan struct{} { return l.done }
