package allocbatch

import (
	"context"
	"errors"
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
