package consumer

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/segmentio/kafka-go"
)

func noop(context.Context) {}

func TestKeyLanesRoutesByKey(t *testing.T) {
	k := NewKeyLanes(8, 0)
	tests := []struct {
		name string
		key  []byte
	}{
		{"order id", []byte("order-42")},
		{"container id", []byte("C-0001")},
		{"binary key", []byte{0, 1, 2, 255}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			first := k.Lane(tt.key)
			if first < 0 || first >= 8 {
				t.Fatalf("Lane(%q) = %d, want 0..7", tt.key, first)
			}
			for range 10 {
				if got := k.Lane(tt.key); got != first {
					t.Fatalf("Lane(%q) = %d then %d: the same key must always get the same lane", tt.key, first, got)
				}
			}
		})
	}
	if got := k.Lane(nil); got != -1 {
		t.Errorf("Lane(nil) = %d, want -1 (no key: round-robin)", got)
	}
}

func TestKeyLanesSpreadsRecordsWithoutKeyRoundRobin(t *testing.T) {
	k := NewKeyLanes(4, 2)
	for i := range 8 {
		if err := k.Dispatch(t.Context(), kafka.Message{Offset: int64(i)}, noop); err != nil {
			t.Fatalf("Dispatch %d: %v", i, err)
		}
	}
	var got []int
	for _, lane := range k.lanes {
		got = append(got, len(lane))
	}
	if diff := cmp.Diff([]int{2, 2, 2, 2}, got); diff != "" {
		t.Errorf("records per lane (-want +got):\n%s", diff)
	}
}

func TestKeyLanesDispatchBlocksWhenTheSharedBudgetIsFull(t *testing.T) {
	k := NewKeyLanes(2, 1) // budget: 2 waiting records
	msg := kafka.Message{Key: []byte("order-1")}
	for i := range 2 {
		if err := k.Dispatch(t.Context(), msg, noop); err != nil {
			t.Fatalf("Dispatch %d: %v", i, err)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	if err := k.Dispatch(ctx, kafka.Message{Key: []byte("order-2")}, noop); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Dispatch with the budget taken: err = %v, want it to block until the deadline", err)
	}
}

// One key stuck in a slow call (an inventory hanging until its timeout)
// must not stop the fetch loop while other lanes have work: its lane may
// borrow from the shared budget, and the other keys keep running.
func TestKeyLanesSlowKeyDoesNotBlockOtherKeys(t *testing.T) {
	k := NewKeyLanes(4, 2) // budget: 8 waiting records
	release := make(chan struct{})
	done := make(chan struct{}, 16)
	runDone := make(chan error, 1)
	go func() { runDone <- k.Run(t.Context()) }()
	t.Cleanup(func() { k.Close(); <-runDone })

	slow := kafka.Message{Key: []byte("slow")}
	if err := k.Dispatch(t.Context(), slow, func(context.Context) { <-release }); err != nil {
		t.Fatalf("Dispatch slow: %v", err)
	}
	// Five more records for the slow key queue behind it, beyond the
	// old per-lane limit of 2, without blocking the fetch loop.
	for i := range 5 {
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		err := k.Dispatch(ctx, slow, noop)
		cancel()
		if err != nil {
			t.Fatalf("Dispatch slow #%d: %v", i, err)
		}
	}
	other := kafka.Message{Key: []byte("other-key")}
	if k.Lane(other.Key) == k.Lane(slow.Key) {
		t.Fatal("test keys share a lane; pick another key")
	}
	if err := k.Dispatch(t.Context(), other, func(context.Context) { done <- struct{}{} }); err != nil {
		t.Fatalf("Dispatch other: %v", err)
	}
	select {
	case <-done:
	case <-time.After(30 * time.Second): // generous: a loaded -race run
		t.Fatal("a record of another key did not run while one key was stuck")
	}
	close(release)
}

func TestKeyLanesCloseDropsQueuedRecordsAndWaitsForRunningOnes(t *testing.T) {
	k := NewKeyLanes(1, 4)
	runDone := make(chan error, 1)
	go func() { runDone <- k.Run(t.Context()) }()

	started, release := make(chan struct{}), make(chan struct{})
	var ran []int
	if err := k.Dispatch(t.Context(), kafka.Message{}, func(context.Context) {
		close(started)
		<-release
		ran = append(ran, 0)
	}); err != nil {
		t.Fatal(err)
	}
	<-started
	for i := 1; i <= 3; i++ {
		if err := k.Dispatch(t.Context(), kafka.Message{}, func(context.Context) { ran = append(ran, i) }); err != nil {
			t.Fatal(err)
		}
	}
	k.Close()
	if err := k.Dispatch(t.Context(), kafka.Message{}, noop); !errors.Is(err, ErrClosed) {
		t.Fatalf("Dispatch after Close: err = %v, want ErrClosed", err)
	}
	select {
	case <-runDone:
		t.Fatal("Run returned while a record was still running")
	case <-time.After(20 * time.Millisecond):
	}
	close(release)
	if err := <-runDone; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if diff := cmp.Diff([]int{0}, ran); diff != "" {
		t.Errorf("records run (-want +got):\n%s", diff)
	}
	if err := k.Run(t.Context()); err == nil {
		t.Error("second Run: want an error")
	}
}

func TestKeyLanesKeepOrderPerKey(t *testing.T) {
	k := NewKeyLanes(4, 2)
	runDone := make(chan error, 1)
	go func() { runDone <- k.Run(t.Context()) }()

	results := make(chan string, 100)
	for i := range 25 {
		for _, key := range []string{"a", "b", "c"} {
			msg := kafka.Message{Key: []byte(key)}
			if err := k.Dispatch(t.Context(), msg, func(context.Context) { results <- fmt.Sprintf("%s%d", key, i) }); err != nil {
				t.Fatal(err)
			}
		}
	}
	got := map[string][]string{}
	for range 75 {
		r := <-results
		got[r[:1]] = append(got[r[:1]], r)
	}
	k.Close()
	if err := <-runDone; err != nil {
		t.Fatalf("Run: %v", err)
	}
	for _, key := range []string{"a", "b", "c"} {
		var want []string
		for i := range 25 {
			want = append(want, fmt.Sprintf("%s%d", key, i))
		}
		if diff := cmp.Diff(want, got[key]); diff != "" {
			t.Errorf("key %s order (-want +got):\n%s", key, diff)
		}
	}
}
