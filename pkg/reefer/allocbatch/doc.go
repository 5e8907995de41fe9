// Package allocbatch gathers the reefer allocations, and the marks of
// allocated orders, that concurrent records ask for into one database
// statement per batch instead of one per order.
//
// Why batch: on Postgres every statement outside a transaction is its own
// commit, a WAL flush to disk, plus a round trip and query planning. At a
// few thousand orders a second those per-statement costs, not the work
// itself, bound the throughput, and orders queue behind each other (a
// retry service then runs its retries late). reeferstore.AllocateBatch and
// MarkAllocatedBatch do the work of many orders in one statement, so the
// fixed costs are paid once per batch.
//
// There is no timer and no minimum batch size: a batch is whatever queued
// up while the previous one ran ("group commit"). A lone order goes out at
// once, alone, and a busy service gets large batches. Batches run one at a
// time: with FOR UPDATE SKIP LOCKED, concurrent batches would skip each
// other's locked rows, and while one batch runs the next one grows.
//
// Allocator satisfies allocation.Store and Ledger satisfies orders.Ledger,
// so a service swaps them in for the store where it builds its pipeline:
//
//	alloc := allocbatch.NewAllocator(store, allocbatch.DefaultMaxBatch)
//	ledger := allocbatch.NewLedger(store, allocbatch.DefaultMaxBatch)
//	go alloc.Run(batchCtx)  // until batchCtx ends; then alloc.Done() closes
//	go ledger.Run(batchCtx)
//
// Stop them (cancel batchCtx) after the consumer has drained: a record
// that asks a stopped batcher gets ErrStopped, a transient error.
package allocbatch
