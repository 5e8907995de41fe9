package allocbatch

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/failure"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/allocation"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/reeferstore"
)

// fakeLedgerStore records the MarkAllocatedBatch calls; the first call
// waits on gate so that others can queue behind it. Orders named in lost
// lose their mark.
type fakeLedgerStore struct {
	mu      sync.Mutex
	batches [][]string
	err     error
	gate    chan struct{}
	lost    map[string]bool
}

func (f *fakeLedgerStore) MarkAllocatedBatch(_ context.Context, rs []reeferstore.Reservation) ([]bool, error) {
	f.mu.Lock()
	gate := f.gate
	f.gate = nil
	f.mu.Unlock()
	if gate != nil {
		<-gate
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	ids := make([]string, len(rs))
	won := make([]bool, len(rs))
	for i, r := range rs {
		ids[i] = r.OrderID
		won[i] = !f.lost[r.OrderID]
	}
	f.batches = append(f.batches, ids)
	return won, f.err
}

var errPassedThrough = errors.New("not batched: the ledger passes it through")

func (f *fakeLedgerStore) MarkAllocated(context.Context, string, string) (bool, error) {
	return false, errors.New("the batched ledger must not mark one by one")
}
func (f *fakeLedgerStore) DeadLetter(context.Context, string, allocation.Claim) (allocation.ClaimResult, error) {
	return allocation.ClaimResult{}, errPassedThrough
}
func (f *fakeLedgerStore) Reopen(context.Context, string, int) (bool, error) {
	return false, errPassedThrough
}
func (f *fakeLedgerStore) MarkDeadLetterWritten(context.Context, string, string) error {
	return errPassedThrough
}
func (f *fakeLedgerStore) TakeOverClaim(context.Context, string, string, string, string) (bool, error) {
	return false, errPassedThrough
}
func (f *fakeLedgerStore) Order(context.Context, string) (allocation.Order, bool, error) {
	return allocation.Order{}, false, errPassedThrough
}

// TestLedgerGathersConcurrentMarks: marks that arrive while a
// batch runs go together into the next one, and each caller gets the
// batch's answer.
func TestLedgerGathersConcurrentMarks(t *testing.T) {
	storeErr := errors.New("database unreachable")
	tests := []struct {
		name    string
		err     error
		wantErr error
	}{
		{"every mark succeeds", nil, nil},
		{"a failed batch fails every mark in it", storeErr, storeErr},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gate := make(chan struct{})
			store := &fakeLedgerStore{err: tt.err, gate: gate, lost: map[string]bool{"O-3": true}}
			l := NewLedger(store, 8)
			ctx, cancel := context.WithCancel(t.Context())
			defer func() { cancel(); <-l.Done() }()
			go l.Run(ctx)

			const queued = 5
			errs := make([]error, queued+1)
			won := make([]bool, queued+1)
			var wg sync.WaitGroup
			wg.Go(func() { won[0], errs[0] = l.MarkAllocated(t.Context(), "O-0", "C-0") })
			// The first batch holds the gate before the others ask.
			for started := false; !started; {
				store.mu.Lock()
				started = store.gate == nil
				store.mu.Unlock()
				time.Sleep(time.Millisecond)
			}
			for i := 1; i <= queued; i++ {
				wg.Go(func() { won[i], errs[i] = l.MarkAllocated(t.Context(), fmt.Sprintf("O-%d", i), fmt.Sprintf("C-%d", i)) })
			}
			// They wait for the first batch to finish; give them time to
			// queue (as allocator_test.go does).
			time.Sleep(50 * time.Millisecond)
			close(gate)
			wg.Wait()

			for i, err := range errs {
				if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
					t.Errorf("MarkAllocated(O-%d) = %v, want %v", i, err, tt.wantErr)
				}
				if wantWon := tt.err == nil && i != 3; won[i] != wantWon {
					t.Errorf("MarkAllocated(O-%d) won %t, want %t (each caller gets its own answer)", i, won[i], wantWon)
				}
			}
			store.mu.Lock()
			defer store.mu.Unlock()
			var sizes []int
			var marked []string
			for _, b := range store.batches {
				sizes = append(sizes, len(b))
				marked = append(marked, b...)
			}
			slices.Sort(marked)
			if diff := cmp.Diff([]string{"O-0", "O-1", "O-2", "O-3", "O-4", "O-5"}, marked); diff != "" {
				t.Errorf("marked orders mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]int{1, queued}, sizes); diff != "" {
				t.Errorf("batch sizes mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestLedgerPassesReadsAndDeadLettersThrough: only MarkAllocated is
// batched; the other methods are the store's.
func TestLedgerPassesReadsAndDeadLettersThrough(t *testing.T) {
	l := NewLedger(&fakeLedgerStore{}, 8)
	if _, err := l.DeadLetter(t.Context(), "O-1", allocation.Claim{}); !errors.Is(err, errPassedThrough) {
		t.Errorf("DeadLetter error %v, want the store's", err)
	}
	if _, err := l.Reopen(t.Context(), "O-1", 1); !errors.Is(err, errPassedThrough) {
		t.Errorf("Reopen error %v, want the store's", err)
	}
	if err := l.MarkDeadLetterWritten(t.Context(), "O-1", "order-retries/0@1"); !errors.Is(err, errPassedThrough) {
		t.Errorf("MarkDeadLetterWritten: %v, want the store's error", err)
	}
	if _, _, err := l.Order(t.Context(), "O-1"); !errors.Is(err, errPassedThrough) {
		t.Errorf("Order error %v, want the store's", err)
	}
}

func TestLedgerAfterStopFailsTransiently(t *testing.T) {
	l := NewLedger(&fakeLedgerStore{}, 8)
	ctx, cancel := context.WithCancel(t.Context())
	go l.Run(ctx)
	cancel()
	<-l.Done()
	_, err := l.MarkAllocated(t.Context(), "O-1", "C-1")
	if !errors.Is(err, ErrStopped) || failure.ClassOf(err) != failure.Transient {
		t.Errorf("error %v, want the transient ErrStopped", err)
	}
}
