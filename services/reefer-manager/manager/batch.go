package manager

import (
	"context"
	"errors"
	"fmt"

	"github.com/reeferdlq/reefer-dlq/pkg/failure"
	"github.com/reeferdlq/reefer-dlq/pkg/reeferstore"
)

// batchStore is what the batcher needs from the reefer store.
// *reeferstore.Store satisfies it.
type batchStore interface {
	Allocate(ctx context.Context, orderID string, quantity int) (string, error)
	AllocateBatch(ctx context.Context, reqs []reeferstore.Request) ([]reeferstore.BatchResult, error)
}

// allocationBatcher is the allocation.Store the service uses: it gathers
// the single-order allocations that concurrent records ask for into
// AllocateBatch calls. On Postgres a batch is one statement, so the
// commit (a WAL flush), the round trip and the query planning are paid
// once per batch instead of once per order. There is no timer: a batch is
// whatever queued up while the previous one ran, so a lone order is not
// delayed and a busy service gets large batches ("group commit").
type allocationBatcher struct {
	store    batchStore
	maxBatch int
	requests chan allocationRequest
	done     chan struct{} // closed when run returns
}

type allocationRequest struct {
	req   reeferstore.Request
	reply chan<- allocationReply // buffered: run never blocks on it
}

type allocationReply struct {
	containerID string
	err         error
}

// errBatcherStopped is returned to records that ask after shutdown; it
// is transient, like any unavailable dependency, though the consumer has
// stopped before the batcher does and no record should see it.
var errBatcherStopped = failure.NewTransient("shutting-down", errors.New("allocation batcher stopped"))

func newAllocationBatcher(store batchStore, maxBatch int) *allocationBatcher {
	return &allocationBatcher{
		store:    store,
		maxBatch: maxBatch,
		requests: make(chan allocationRequest),
		done:     make(chan struct{}),
	}
}

// Allocate queues the order for the next batch and waits for its answer.
// The answer is the one Store.Allocate would give.
func (b *allocationBatcher) Allocate(ctx context.Context, orderID string, quantity int) (string, error) {
	reply := make(chan allocationReply, 1)
	select {
	case b.requests <- allocationRequest{req: reeferstore.Request{OrderID: orderID, Quantity: quantity}, reply: reply}:
	case <-ctx.Done():
		return "", fmt.Errorf("allocate reefer for order %s: %w", orderID, ctx.Err())
	case <-b.done:
		return "", fmt.Errorf("allocate reefer for order %s: %w", orderID, errBatcherStopped)
	}
	select {
	case r := <-reply:
		return r.containerID, r.err
	case <-ctx.Done():
		// The batch may still allocate the reefer; the allocation is
		// idempotent, so the order's next attempt gets the same one.
		return "", fmt.Errorf("allocate reefer for order %s: %w", orderID, ctx.Err())
	}
}

// run serves batches until ctx ends. Batches run one at a time: with
// FOR UPDATE SKIP LOCKED, concurrent batches would skip each other's
// locked rows, and while one batch runs the next one grows, which is what
// keeps the cost per order low under load.
func (b *allocationBatcher) run(ctx context.Context) {
	defer close(b.done)
	batch := make([]allocationRequest, 0, b.maxBatch)
	for {
		var ok bool
		if batch, ok = nextBatch(ctx, b.requests, batch[:0], b.maxBatch); !ok {
			return
		}
		b.allocate(ctx, batch)
	}
}

// nextBatch waits for one request, then appends to batch whatever else is
// already queued, up to maxBatch in all. ok is false when ctx ended first.
func nextBatch[T any](ctx context.Context, requests <-chan T, batch []T, maxBatch int) (_ []T, ok bool) {
	select {
	case r := <-requests:
		batch = append(batch, r)
	case <-ctx.Done():
		return batch, false
	}
	for len(batch) < maxBatch {
		select {
		case r := <-requests:
			batch = append(batch, r)
		default:
			return batch, true
		}
	}
	return batch, true
}

func (b *allocationBatcher) allocate(ctx context.Context, batch []allocationRequest) {
	if len(batch) == 1 {
		id, err := b.store.Allocate(ctx, batch[0].req.OrderID, batch[0].req.Quantity)
		batch[0].reply <- allocationReply{id, err}
		return
	}
	reqs := make([]reeferstore.Request, len(batch))
	for i, r := range batch {
		reqs[i] = r.req
	}
	results, err := b.store.AllocateBatch(ctx, reqs)
	if err != nil && failure.IsPermanent(err) {
		// One order's data may have broken the whole transaction; do not
		// dead-letter the others with it: answer each on its own.
		for _, r := range batch {
			id, err := b.store.Allocate(ctx, r.req.OrderID, r.req.Quantity)
			r.reply <- allocationReply{id, err}
		}
		return
	}
	for i, r := range batch {
		if err != nil {
			r.reply <- allocationReply{err: fmt.Errorf("allocate reefer for order %s: %w", r.req.OrderID, err)}
			continue
		}
		res := results[i]
		if res.Err != nil {
			r.reply <- allocationReply{err: fmt.Errorf("allocate reefer for order %s: %w", r.req.OrderID, res.Err)}
			continue
		}
		r.reply <- allocationReply{containerID: res.ContainerID}
	}
}
