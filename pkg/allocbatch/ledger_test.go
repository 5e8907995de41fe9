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

	"github.com/reeferdlq/reefer-dlq/pkg/failure"
)

// fakeLedgerStore records the MarkAllocatedBatch calls; the first call
// waits on gate so that others can queue behind it.
type fakeLedgerStore struct {
	mu      sync.Mutex
	batches [][]string
	err     error
	gate    chan struct{}
}

func (f *fakeLedgerStore) MarkAllocatedBatch(_ context.Context, ids []string) error {
	f.mu.Lock()
	gate := f.gate
	f.gate = nil
	f.mu.Unlock()
	if gate != nil {
		<-gate
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.batches = append(f.batches, slices.Clone(ids))
	return f.err
}

func (f *fakeLedgerStore) Conclusion(context.Context, string) (string, int, bool, error) {
	return "", 0, false, errors.New("not batched: the ledger passes it through")
}
func (f *fakeLedgerStore) Allocation(context.Context, string) (string, bool, error) {
	return "", false, errors.New("not batched: the ledger passes it through")
}
func (f *fakeLedgerStore) MarkAllocated(context.Context, string) error {
	return errors.New("the batched ledger must not mark one by one")
}
func (f *fakeLedgerStore) MarkDeadLettered(context.Context, string, int) error {
	return errors.New("not batched: the ledger passes it through")
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
			store := &fakeLedgerStore{err: tt.err, gate: gate}
			l := NewLedger(store, 8)
			ctx, cancel := context.WithCancel(t.Context())
			defer func() { cancel(); <-l.Done() }()
			go l.Run(ctx)

			const queued = 5
			errs := make([]error, queued+1)
			var wg sync.WaitGroup
			wg.Go(func() { errs[0] = l.MarkAllocated(t.Context(), "O-0") })
			// The first batch holds the gate before the others ask.
			for started := false; !started; {
				store.mu.Lock()
				started = store.gate == nil
				store.mu.Unlock()
				time.Sleep(time.Millisecond)
			}
			for i := 1; i <= queued; i++ {
				wg.Go(func() { errs[i] = l.MarkAllocated(t.Context(), fmt.Sprintf("O-%d", i)) })
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
	want := "not batched: the ledger passes it through"
	if _, _, _, err := l.Conclusion(t.Context(), "O-1"); err == nil || err.Error() != want {
		t.Errorf("Conclusion error %v, want the store's %q", err, want)
	}
	if _, _, err := l.Allocation(t.Context(), "O-1"); err == nil || err.Error() != want {
		t.Errorf("Allocation error %v, want the store's %q", err, want)
	}
	if err := l.MarkDeadLettered(t.Context(), "O-1", 0); err == nil || err.Error() != want {
		t.Errorf("MarkDeadLettered error %v, want the store's %q", err, want)
	}
}

func TestLedgerAfterStopFailsTransiently(t *testing.T) {
	l := NewLedger(&fakeLedgerStore{}, 8)
	ctx, cancel := context.WithCancel(t.Context())
	go l.Run(ctx)
	cancel()
	<-l.Done()
	err := l.MarkAllocated(t.Context(), "O-1")
	if !errors.Is(err, ErrStopped) || failure.ClassOf(err) != failure.Transient {
		t.Errorf("error %v, want the transient ErrStopped", err)
	}
}
