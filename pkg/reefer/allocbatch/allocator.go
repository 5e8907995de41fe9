package allocbatch

import (
	"context"
	"fmt"

	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/failure"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/reeferstore"
)

// Store is what Allocator needs from the reefer store.
// *reeferstore.Store satisfies it.
type Store interface {
	Allocate(ctx context.Context, orderID string, quantity int) (string, error)
	AllocateBatch(ctx context.Context, reqs []reeferstore.Request) ([]reeferstore.BatchResult, error)
}

// Allocator is an allocation.Store that gathers the single-order
// allocations of concurrent callers into Store.AllocateBatch calls. Its
// answers are the ones Store.Allocate would give. Allocate waits until
// Run serves it, so start Run before the first record.
type Allocator struct {
	store                                 Store
	gatherer[reeferstore.Request, string] // answers: the reefer's id
}

// NewAllocator returns an Allocator over store that puts at most maxBatch
// orders in one statement (DefaultMaxBatch when maxBatch <= 0).
func NewAllocator(store Store, maxBatch int) *Allocator {
	return &Allocator{store: store, gatherer: newGatherer[reeferstore.Request, string](maxBatch)}
}

// Allocate queues the order for the next batch and waits for its answer.
// A caller whose ctx ends first gets ctx's error: the batch may still
// allocate the reefer; the allocation is idempotent, so the order's next
// attempt gets the same one.
func (a *Allocator) Allocate(ctx context.Context, orderID string, quantity int) (string, error) {
	return a.ask(ctx, reeferstore.Request{OrderID: orderID, Quantity: quantity}, "allocate reefer for order "+orderID)
}

// Run serves batches, one at a time, until ctx ends; then Done closes.
func (a *Allocator) Run(ctx context.Context) { a.run(ctx, a.allocate) }

// Done is closed when Run has returned.
func (a *Allocator) Done() <-chan struct{} { return a.done }

func (a *Allocator) allocate(ctx context.Context, batch []pending[reeferstore.Request, string]) {
	ctx, cancel := withDeadline(ctx, a.timeout)
	defer cancel()
	if len(batch) == 1 {
		id, err := a.store.Allocate(ctx, batch[0].req.OrderID, batch[0].req.Quantity)
		batch[0].reply <- answer[string]{id, err}
		return
	}
	reqs := make([]reeferstore.Request, len(batch))
	for i, r := range batch {
		reqs[i] = r.req
	}
	results, err := a.store.AllocateBatch(ctx, reqs)
	if err != nil && failure.IsPermanent(err) {
		// One order's data may have broken the whole statement; do not
		// dead-letter the others with it: answer each on its own.
		for _, r := range batch {
			id, err := a.store.Allocate(ctx, r.req.OrderID, r.req.Quantity)
			r.reply <- answer[string]{id, err}
		}
		return
	}
	for i, r := range batch {
		if err != nil {
			r.reply <- answer[string]{err: fmt.Errorf("allocate reefer for order %s: %w", r.req.OrderID, err)}
			continue
		}
		res := results[i]
		if res.Err != nil {
			r.reply <- answer[string]{err: fmt.Errorf("allocate reefer for order %s: %w", r.req.OrderID, res.Err)}
			continue
		}
		r.reply <- answer[string]{rep: res.ContainerID}
	}
}
