package manager

import (
	"context"
	"fmt"

	"github.com/reeferdlq/reefer-dlq/pkg/handoff"
)

// ledgerStore is what the batched ledger needs from the reefer store.
// *reeferstore.Store satisfies it.
type ledgerStore interface {
	handoff.Ledger
	MarkAllocatedBatch(ctx context.Context, orderIDs []string) error
}

// batchedLedger is the handoff.Ledger the service uses. Every allocated
// order is marked (so that a retry chain of the same order stops, see
// handoff.Ledger); one statement per order would cost a commit each, so
// the marks of concurrent records are gathered into MarkAllocatedBatch
// calls, the same group commit as allocationBatcher. The other methods go
// straight to the store: reefer-manager reads first attempts only, which
// never call them.
type batchedLedger struct {
	ledgerStore
	maxBatch int
	requests chan markRequest
	done     chan struct{} // closed when run returns
}

type markRequest struct {
	orderID string
	reply   chan<- error // buffered: run never blocks on it
}

func newBatchedLedger(store ledgerStore, maxBatch int) *batchedLedger {
	return &batchedLedger{
		ledgerStore: store,
		maxBatch:    maxBatch,
		requests:    make(chan markRequest),
		done:        make(chan struct{}),
	}
}

// MarkAllocated queues the mark for the next batch and waits for the
// batch's answer.
func (l *batchedLedger) MarkAllocated(ctx context.Context, orderID string) error {
	reply := make(chan error, 1)
	select {
	case l.requests <- markRequest{orderID: orderID, reply: reply}:
	case <-ctx.Done():
		return fmt.Errorf("mark order %s allocated: %w", orderID, ctx.Err())
	case <-l.done:
		return fmt.Errorf("mark order %s allocated: %w", orderID, errBatcherStopped)
	}
	select {
	case err := <-reply:
		return err
	case <-ctx.Done():
		return fmt.Errorf("mark order %s allocated: %w", orderID, ctx.Err())
	}
}

// run serves batches until ctx ends; like allocationBatcher.run, a batch
// is whatever queued while the previous one ran.
func (l *batchedLedger) run(ctx context.Context) {
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
		err := l.MarkAllocatedBatch(ctx, ids)
		for _, r := range batch {
			r.reply <- err
		}
	}
}
