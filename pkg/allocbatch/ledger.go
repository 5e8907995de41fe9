package allocbatch

import (
	"context"
	"fmt"
	"time"

	"github.com/reeferdlq/reefer-dlq/pkg/handoff"
)

// LedgerStore is what Ledger needs from the reefer store.
// *reeferstore.Store satisfies it.
type LedgerStore interface {
	handoff.Ledger
	MarkAllocatedBatch(ctx context.Context, orderIDs []string) error
}

// Ledger is a handoff.Ledger whose MarkAllocated, called once for every
// allocated order, gathers the marks of concurrent callers into
// LedgerStore.MarkAllocatedBatch calls. Its other methods go straight to
// the store: they run only for orders that already have a conclusion or
// are dead-lettered, which is rare. MarkAllocated waits until Run serves
// it, so start Run before the first record.
type Ledger struct {
	store    LedgerStore
	maxBatch int
	requests chan markRequest
	done     chan struct{} // closed when Run returns
	timeout  time.Duration // of each batch and store call; DefaultTimeout
}

type markRequest struct {
	orderID string
	reply   chan<- error // buffered: Run never blocks on it
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

// Conclusion is the store's Conclusion, within DefaultTimeout.
func (l *Ledger) Conclusion(ctx context.Context, orderID string) (string, int, bool, error) {
	ctx, cancel := withDeadline(ctx, l.timeout)
	defer cancel()
	return l.store.Conclusion(ctx, orderID)
}

// Allocation is the store's Allocation, within DefaultTimeout.
func (l *Ledger) Allocation(ctx context.Context, orderID string) (string, bool, error) {
	ctx, cancel := withDeadline(ctx, l.timeout)
	defer cancel()
	return l.store.Allocation(ctx, orderID)
}

// MarkDeadLettered is the store's MarkDeadLettered, within
// DefaultTimeout.
func (l *Ledger) MarkDeadLettered(ctx context.Context, orderID string, redriveCount int) error {
	ctx, cancel := withDeadline(ctx, l.timeout)
	defer cancel()
	return l.store.MarkDeadLettered(ctx, orderID, redriveCount)
}

// MarkAllocated queues the mark for the next batch and waits for the
// batch's answer.
func (l *Ledger) MarkAllocated(ctx context.Context, orderID string) error {
	reply := make(chan error, 1)
	select {
	case l.requests <- markRequest{orderID: orderID, reply: reply}:
	case <-ctx.Done():
		return fmt.Errorf("mark order %s allocated: %w", orderID, ctx.Err())
	case <-l.done:
		return fmt.Errorf("mark order %s allocated: %w", orderID, ErrStopped)
	}
	select {
	case err := <-reply:
		return err
	case <-ctx.Done():
		return fmt.Errorf("mark order %s allocated: %w", orderID, ctx.Err())
	}
}

// Run serves batches, one at a time, until ctx ends; then Done closes.
func (l *Ledger) Run(ctx context.Context) {
	defer close(l.done)
	batch := make([]markRequest, 0, l.maxBatch)
	ids := make([]string, 0, l.maxBatch)
	for {
		var ok bool
		if batch, ok = nextBatch(ctx, l.requests, batch[:0], l.maxBatch); !ok {
			return
		}
		ids = ids[:0]
		for _, r := range batch {
			ids = append(ids, r.orderID)
		}
		bctx, cancel := withDeadline(ctx, l.timeout)
		err := l.store.MarkAllocatedBatch(bctx, ids)
		cancel()
		if err != nil {
			err = fmt.Errorf("mark %d orders allocated: %w", len(ids), err)
		}
		for _, r := range batch {
			r.reply <- err
		}
	}
}

// Done is closed when Run has returned.
func (l *Ledger) Done() <-chan struct{} { return l.done }
