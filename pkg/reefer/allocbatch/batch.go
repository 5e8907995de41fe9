package allocbatch

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/failure"
)

// DefaultMaxBatch bounds the orders in one statement: larger batches hold
// their row locks longer. Measured on Postgres with 2 cores
// (reeferstore's BenchmarkPostgresAllocate): batches of 64 allocate about
// 12,000-15,000 orders/s, single orders from 16 goroutines about 4,500.
const DefaultMaxBatch = 128

// DefaultTimeout bounds each batch, and each store call made on a
// caller's behalf: a database that hangs (paused, a network path that
// drops packets, a lock held forever) must turn into a transient failure,
// so that the order goes to the retry topic, instead of freezing every
// allocation behind it. It is above the server-side statement_timeout
// reeferstore sets on Postgres (10s), so a slow statement ends with the
// server's clearer error first, and above its connect_timeout (15s), so a
// batch that must open a connection on a busy machine is not cut short;
// a healthy batch takes milliseconds. A caller waits at most for the batch
// that runs when it arrives plus its own: 2 x DefaultTimeout = 40s.
const DefaultTimeout = 20 * time.Second

// ErrStopped is returned to callers that ask after Run has returned. It is
// transient, like any unavailable dependency; a service stops its
// batchers after its consumer, so no record should see it.
var ErrStopped = failure.NewTransient("shutting-down", errors.New("batcher stopped"))

// gatherer is what Allocator and Ledger share: concurrent callers hand it
// one request each (ask) and wait; run serves whatever is queued as one
// batch, one batch at a time, until ctx ends.
type gatherer[Req, Rep any] struct {
	maxBatch int
	requests chan pending[Req, Rep]
	done     chan struct{} // closed when run returns
	timeout  time.Duration // of each batch and store call; DefaultTimeout
}

// pending is one caller's request and where its answer goes.
type pending[Req, Rep any] struct {
	req   Req
	reply chan<- answer[Rep] // buffered: run never blocks on it
}

// answer is what a batch gives one caller.
type answer[Rep any] struct {
	rep Rep
	err error
}

func newGatherer[Req, Rep any](maxBatch int) gatherer[Req, Rep] {
	return gatherer[Req, Rep]{
		maxBatch: checkMax(maxBatch),
		requests: make(chan pending[Req, Rep]),
		done:     make(chan struct{}),
	}
}

// ask queues req for the next batch and waits for its answer; what names
// the request in errors ("allocate reefer for order O-1"). A caller whose
// ctx ends while its batch runs gets ctx's error; the batch still runs.
func (g *gatherer[Req, Rep]) ask(ctx context.Context, req Req, what string) (Rep, error) {
	var zero Rep
	reply := make(chan answer[Rep], 1)
	select {
	case g.requests <- pending[Req, Rep]{req: req, reply: reply}:
	case <-ctx.Done():
		return zero, fmt.Errorf("%s: %w", what, ctx.Err())
	case <-g.done:
		return zero, fmt.Errorf("%s: %w", what, ErrStopped)
	}
	select {
	case a := <-reply:
		return a.rep, a.err
	case <-ctx.Done():
		return zero, fmt.Errorf("%s: %w", what, ctx.Err())
	}
}

// run hands serve each batch, one at a time, until ctx ends; then done
// closes. serve must answer every request of the batch exactly once.
func (g *gatherer[Req, Rep]) run(ctx context.Context, serve func(ctx context.Context, batch []pending[Req, Rep])) {
	defer close(g.done)
	batch := make([]pending[Req, Rep], 0, g.maxBatch)
	for {
		var ok bool
		if batch, ok = nextBatch(ctx, g.requests, batch[:0], g.maxBatch); !ok {
			return
		}
		serve(ctx, batch)
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

// checkMax gives the zero or a negative maxBatch a meaning: the default.
func checkMax(maxBatch int) int {
	if maxBatch <= 0 {
		return DefaultMaxBatch
	}
	return maxBatch
}

// withDeadline bounds one batch or store call by timeout (DefaultTimeout
// when it is 0 or less); the error of a call cut short wraps
// context.DeadlineExceeded, which package failure classes transient.
func withDeadline(ctx context.Context, timeout time.Duration) (context.Context, context.CancelFunc) {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	return context.WithTimeout(ctx, timeout)
}
