package baseline

import (
	"context"
	"time"

	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/failure"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/allocation"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/events"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/orders"
)

// SleepingRetry wraps an allocator the way the original implementation
// retried: after failed attempt n it sleeps n × Delay in the listener and
// tries again, up to Attempts attempts; then it gives up and returns the
// last error (the caller dead-letters the order). A permanent error is
// returned at once.
type SleepingRetry struct {
	Next     orders.Allocator
	Attempts int
	Delay    time.Duration
}

var _ orders.Allocator = SleepingRetry{}

// Allocate runs Next.Allocate until it succeeds, fails permanently, or
// Attempts attempts failed.
func (s SleepingRetry) Allocate(ctx context.Context, order events.OrderCreated) (allocation.Result, error) {
	for attempt := 1; ; attempt++ {
		res, err := s.Next.Allocate(ctx, order)
		if err == nil || failure.IsPermanent(err) || attempt >= s.Attempts {
			return res, err
		}
		// The sleep is the point: this is the listener thread, and its
		// partition waits with it.
		t := time.NewTimer(time.Duration(attempt) * s.Delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return res, err
		}
	}
}
