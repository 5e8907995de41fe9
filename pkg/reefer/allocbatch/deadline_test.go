package allocbatch

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/failure"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/allocation"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/reeferstore"
)

// hungStore is a database that accepted the connection and never
// answers: every call returns only when its context ends.
type hungStore struct{}

func (hungStore) hang(ctx context.Context) error {
	<-ctx.Done()
	return ctx.Err()
}

func (s hungStore) Allocate(ctx context.Context, _ string, _ int) (string, error) {
	return "", s.hang(ctx)
}

func (s hungStore) AllocateBatch(ctx context.Context, _ []reeferstore.Request) ([]reeferstore.BatchResult, error) {
	return nil, s.hang(ctx)
}

func (s hungStore) MarkAllocated(ctx context.Context, _, _ string) (bool, error) {
	return false, s.hang(ctx)
}

func (s hungStore) DeadLetter(ctx context.Context, _ string, _ allocation.Claim) (allocation.ClaimResult, error) {
	return allocation.ClaimResult{}, s.hang(ctx)
}

func (s hungStore) Reopen(ctx context.Context, _ string, _ int) (bool, error) {
	return false, s.hang(ctx)
}

func (s hungStore) MarkDeadLetterWritten(ctx context.Context, _, _ string) error {
	return s.hang(ctx)
}

func (s hungStore) TakeOverClaim(ctx context.Context, _, _, _, _ string) (bool, error) {
	return false, s.hang(ctx)
}

func (s hungStore) Order(ctx context.Context, _ string) (allocation.Order, bool, error) {
	return allocation.Order{}, false, s.hang(ctx)
}

func (s hungStore) MarkAllocatedBatch(ctx context.Context, _ []reeferstore.Reservation) ([]bool, error) {
	return nil, s.hang(ctx)
}

// A hung database turns every call into a transient failure within
// 2 x DefaultTimeout (the batch running when the call arrives, then its
// own), even though the callers' contexts have no deadline. The clock is
// synctest's: the bound is exact, whatever the machine's load.
func TestAHungStoreFailsEveryCallTransientlyWithinTheBound(t *testing.T) {
	calls := map[string]func(a *Allocator, l *Ledger) error{
		"Allocate": func(a *Allocator, _ *Ledger) error {
			_, err := a.Allocate(context.Background(), "O-1", 10)
			return err
		},
		"MarkAllocated": func(_ *Allocator, l *Ledger) error {
			_, err := l.MarkAllocated(context.Background(), "O-1", "C-1")
			return err
		},
		"DeadLetter": func(_ *Allocator, l *Ledger) error {
			_, err := l.DeadLetter(context.Background(), "O-1", allocation.Claim{})
			return err
		},
		"Reopen": func(_ *Allocator, l *Ledger) error {
			_, err := l.Reopen(context.Background(), "O-1", 1)
			return err
		},
		"MarkDeadLetterWritten": func(_ *Allocator, l *Ledger) error {
			return l.MarkDeadLetterWritten(context.Background(), "O-1", "order-retries/0@1")
		},
		"Order": func(_ *Allocator, l *Ledger) error {
			_, _, err := l.Order(context.Background(), "O-1")
			return err
		},
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx, cancel := context.WithCancel(context.Background())
				a, l := NewAllocator(hungStore{}, 0), NewLedger(hungStore{}, 0)
				go a.Run(ctx)
				go l.Run(ctx)
				defer func() { cancel(); <-a.Done(); <-l.Done() }()

				// A first call occupies the batcher, so the measured one
				// waits for a whole batch before its own.
				go func() { _ = call(a, l) }()
				synctest.Wait()
				start := time.Now()
				err := call(a, l)
				took := time.Since(start)

				if !errors.Is(err, context.DeadlineExceeded) || failure.ClassOf(err) != failure.Transient {
					t.Errorf("error = %v (class %q), want a transient deadline", err, failure.ClassOf(err))
				}
				if took > 2*DefaultTimeout {
					t.Errorf("the call took %s, want at most 2 x DefaultTimeout = %s", took, 2*DefaultTimeout)
				}
			})
		})
	}
}
