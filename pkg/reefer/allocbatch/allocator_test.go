package allocbatch

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/failure"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/allocation"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/reeferstore"
)

// fakeStore allocates C-<order> to every order, except the orders
// listed in noCapacity; batchErr fails every AllocateBatch call.
type fakeStore struct {
	mu         sync.Mutex
	batches    []int // sizes of the AllocateBatch calls
	singles    int
	noCapacity map[string]bool
	batchErr   error
	gate       chan struct{} // when set, the first call waits on it
}

func (f *fakeStore) answer(r reeferstore.Request) reeferstore.BatchResult {
	if f.noCapacity[r.OrderID] {
		return reeferstore.BatchResult{OrderID: r.OrderID, Err: allocation.ErrNoCapacity}
	}
	return reeferstore.BatchResult{OrderID: r.OrderID, ContainerID: "C-" + r.OrderID}
}

func (f *fakeStore) wait() {
	f.mu.Lock()
	gate := f.gate
	f.gate = nil
	f.mu.Unlock()
	if gate != nil {
		<-gate
	}
}

func (f *fakeStore) Allocate(_ context.Context, orderID string, quantity int) (string, error) {
	f.wait()
	f.mu.Lock()
	f.singles++
	f.mu.Unlock()
	res := f.answer(reeferstore.Request{OrderID: orderID, Quantity: quantity})
	return res.ContainerID, res.Err
}

func (f *fakeStore) AllocateBatch(_ context.Context, reqs []reeferstore.Request) ([]reeferstore.BatchResult, error) {
	f.wait()
	f.mu.Lock()
	f.batches = append(f.batches, len(reqs))
	err := f.batchErr
	f.mu.Unlock()
	if err != nil {
		return nil, err
	}
	out := make([]reeferstore.BatchResult, len(reqs))
	for i, r := range reqs {
		out[i] = f.answer(r)
	}
	return out, nil
}

func startAllocator(t *testing.T, store Store, max int) *Allocator {
	t.Helper()
	b := NewAllocator(store, max)
	ctx, cancel := context.WithCancel(context.Background())
	go b.Run(ctx)
	t.Cleanup(func() {
		cancel()
		<-b.Done()
	})
	return b
}

// allocateConcurrently asks for n orders at once while the store holds its
// first call, so that the rest queue up behind it. It runs in a synctest
// bubble: synctest.Wait, not a sleep, says when every request is queued,
// so a loaded machine cannot split them into other batches.
func allocateConcurrently(t *testing.T, b *Allocator, store *fakeStore, n int) map[string]answer[string] {
	t.Helper()
	gate := make(chan struct{})
	store.gate = gate
	var (
		mu      sync.Mutex
		replies = map[string]answer[string]{}
		wg      sync.WaitGroup
	)
	for i := range n {
		id := fmt.Sprintf("O-%03d", i)
		wg.Go(func() {
			c, err := b.Allocate(context.Background(), id, 10)
			mu.Lock()
			replies[id] = answer[string]{c, err}
			mu.Unlock()
		})
	}
	// Let every request reach the allocator (one is being served, the
	// others wait to be gathered) before the store answers.
	synctest.Wait()
	close(gate)
	wg.Wait()
	return replies
}

func TestAllocatorAnswersEachOrderLikeTheStore(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := &fakeStore{noCapacity: map[string]bool{"O-003": true}}
		b := startAllocator(t, store, 8)
		replies := allocateConcurrently(t, b, store, 20)
		for id, r := range replies {
			switch {
			case id == "O-003":
				if !errors.Is(r.err, allocation.ErrNoCapacity) {
					t.Errorf("%s: error %v, want ErrNoCapacity", id, r.err)
				}
			case r.err != nil || r.rep != "C-"+id:
				t.Errorf("%s: got %q, %v; want C-%s", id, r.rep, r.err, id)
			}
		}
		total := store.singles
		for _, size := range store.batches {
			if size > 8 {
				t.Errorf("batch of %d, want at most 8", size)
			}
			total += size
		}
		if total != 20 {
			t.Errorf("store saw %d orders, want 20", total)
		}
		if len(store.batches) == 0 {
			t.Errorf("no batch: the queued requests were not gathered (singles %d)", store.singles)
		}
	})
}

func TestAllocatorGivesTransientBatchFailureToEveryOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		down := failure.NewTransient("connection-refused", errors.New("database unreachable"))
		store := &fakeStore{batchErr: down}
		b := startAllocator(t, store, 64)
		replies := allocateConcurrently(t, b, store, 10)
		failed := 0
		for id, r := range replies {
			if r.err == nil {
				continue
			}
			failed++
			if !errors.Is(r.err, down) || failure.ClassOf(r.err) != failure.Transient {
				t.Errorf("%s: error %v, want the transient batch error", id, r.err)
			}
		}
		// A request served alone goes through Allocate, which works here.
		if want := len(replies) - store.singles; failed != want || failed == 0 {
			t.Errorf("%d orders failed, want the %d that were batched", failed, want)
		}
	})
}

// A permanent batch error may come from one order's data: the others must
// not be dead-lettered with it, so each is answered on its own.
func TestAllocatorRetriesAPermanentBatchFailureOrderByOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := &fakeStore{batchErr: failure.NewPermanent("constraint", errors.New("check constraint violated"))}
		b := startAllocator(t, store, 64)
		replies := allocateConcurrently(t, b, store, 10)
		for id, r := range replies {
			if r.err != nil || r.rep != "C-"+id {
				t.Errorf("%s: got %q, %v; want it allocated on its own", id, r.rep, r.err)
			}
		}
	})
}

func TestAllocatorAfterStopFailsTransiently(t *testing.T) {
	b := NewAllocator(&fakeStore{}, 8)
	ctx, cancel := context.WithCancel(context.Background())
	go b.Run(ctx)
	cancel()
	<-b.Done()
	_, err := b.Allocate(context.Background(), "O-1", 10)
	if !errors.Is(err, ErrStopped) || failure.ClassOf(err) != failure.Transient {
		t.Errorf("error %v, want the transient ErrStopped", err)
	}
}

func TestAllocatorHonoursTheCallersContext(t *testing.T) {
	store := &fakeStore{gate: make(chan struct{})}
	defer close(store.gate)
	b := startAllocator(t, store, 8)
	go b.Allocate(context.Background(), "O-blocking", 10) // holds the store
	time.Sleep(20 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := b.Allocate(ctx, "O-2", 10); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v, want the caller's deadline", err)
	}
}

func TestNewUsesTheDefaultForANonPositiveMaxBatch(t *testing.T) {
	tests := []struct {
		maxBatch, want int
	}{
		{0, DefaultMaxBatch},
		{-1, DefaultMaxBatch},
		{1, 1},
		{16, 16},
	}
	for _, tt := range tests {
		if got := NewAllocator(&fakeStore{}, tt.maxBatch).maxBatch; got != tt.want {
			t.Errorf("NewAllocator(store, %d) batches %d, want %d", tt.maxBatch, got, tt.want)
		}
		if got := NewLedger(&fakeLedgerStore{}, tt.maxBatch).maxBatch; got != tt.want {
			t.Errorf("NewLedger(store, %d) batches %d, want %d", tt.maxBatch, got, tt.want)
		}
	}
}
