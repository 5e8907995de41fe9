package handoff_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/reeferdlq/reefer-dlq/pkg/allocation"
	"github.com/reeferdlq/reefer-dlq/pkg/events"
	"github.com/reeferdlq/reefer-dlq/pkg/failure"
	"github.com/reeferdlq/reefer-dlq/pkg/handoff"
	"github.com/reeferdlq/reefer-dlq/pkg/retrymeta"
)

// conclusion is one order's entry in the fake ledger.
type conclusion struct {
	Outcome      string
	RedriveCount int
}

// fakeLedger follows the rules of reeferstore's order_conclusions table:
// allocated replaces anything, a dead letter never replaces an allocation.
type fakeLedger struct {
	mu      sync.Mutex
	orders  map[string]conclusion
	readErr error
	markErr error
}

func (l *fakeLedger) Conclusion(_ context.Context, orderID string) (string, int, bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.readErr != nil {
		return "", 0, false, l.readErr
	}
	c, ok := l.orders[orderID]
	return c.Outcome, c.RedriveCount, ok, nil
}

// Allocation answers C-1, the reefer the test allocator hands out, for
// every allocated order.
func (l *fakeLedger) Allocation(_ context.Context, orderID string) (string, bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.orders[orderID].Outcome != handoff.ConclusionAllocated {
		return "", false, nil
	}
	return "C-1", true, nil
}

func (l *fakeLedger) MarkAllocated(_ context.Context, orderID string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.markErr != nil {
		return l.markErr
	}
	l.orders[orderID] = conclusion{Outcome: handoff.ConclusionAllocated}
	return nil
}

func (l *fakeLedger) MarkDeadLettered(_ context.Context, orderID string, redriveCount int) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.markErr != nil {
		return l.markErr
	}
	if c, ok := l.orders[orderID]; !ok || c.Outcome == handoff.ConclusionDeadLettered && c.RedriveCount < redriveCount {
		l.orders[orderID] = conclusion{Outcome: handoff.ConclusionDeadLettered, RedriveCount: redriveCount}
	}
	return nil
}

// TestProcessDropsStaleDuplicateChains proves the Ledger rules of
// Process: of two retry chains of one order only one conclusion wins,
// and allocation wins over a dead letter.
func TestProcessDropsStaleDuplicateChains(t *testing.T) {
	allocated := conclusion{Outcome: handoff.ConclusionAllocated}
	deadLettered := func(redrives int) conclusion {
		return conclusion{Outcome: handoff.ConclusionDeadLettered, RedriveCount: redrives}
	}
	down := failure.NewTransient("inventory-down", errors.New("inventory unavailable"))
	dbDown := errors.New("database unreachable")

	tests := []struct {
		name string
		prev retrymeta.Meta // Attempt 0: a first attempt; MaxAttempts is 5
		// before is the ledger before the record; nil means empty.
		before map[string]conclusion
		// fails makes the allocation fail transiently; otherwise it
		// allocates C-1.
		fails bool
		// concurrently, when set, is what another chain records in the
		// ledger while this attempt allocates.
		concurrently *conclusion
		readErr      error
		markErr      error

		wantRoute     handoff.Route
		wantConcluded string
		wantAllocator bool // the allocation ran
		wantTopics    []string
		wantErr       error
		wantLedger    map[string]conclusion
	}{
		{
			name:          "a retry that allocates marks the order allocated",
			prev:          retrymeta.Meta{Attempt: 2},
			wantRoute:     handoff.RouteAllocated,
			wantAllocator: true,
			wantTopics:    []string{"orders", "containers"},
			wantLedger:    map[string]conclusion{"O-1": allocated},
		},
		{
			name:          "a first attempt that allocates marks the order allocated too",
			prev:          retrymeta.Meta{},
			wantRoute:     handoff.RouteAllocated,
			wantAllocator: true,
			wantTopics:    []string{"orders", "containers"},
			wantLedger:    map[string]conclusion{"O-1": allocated},
		},
		{
			name:          "a first attempt does not read the ledger",
			prev:          retrymeta.Meta{},
			before:        map[string]conclusion{"O-1": deadLettered(0)},
			wantRoute:     handoff.RouteAllocated,
			wantAllocator: true,
			wantTopics:    []string{"orders", "containers"},
			wantLedger:    map[string]conclusion{"O-1": allocated},
		},
		{
			name:          "a retry of an allocated order re-emits its events without allocating",
			prev:          retrymeta.Meta{Attempt: 3},
			before:        map[string]conclusion{"O-1": allocated},
			wantRoute:     handoff.RouteAllocated,
			wantConcluded: handoff.ConclusionAllocated,
			wantTopics:    []string{"orders", "containers"},
			wantLedger:    map[string]conclusion{"O-1": allocated},
		},
		{
			name:          "a retry of an order another chain dead-lettered is skipped",
			prev:          retrymeta.Meta{Attempt: 3},
			before:        map[string]conclusion{"O-1": deadLettered(0)},
			wantRoute:     handoff.RouteSkipped,
			wantConcluded: handoff.ConclusionDeadLettered,
			wantLedger:    map[string]conclusion{"O-1": deadLettered(0)},
		},
		{
			name:          "a redriven record runs although the order was dead-lettered",
			prev:          retrymeta.Meta{Attempt: 0, RedriveCount: 1},
			before:        map[string]conclusion{"O-1": deadLettered(0)},
			wantRoute:     handoff.RouteAllocated,
			wantAllocator: true,
			wantTopics:    []string{"orders", "containers"},
			wantLedger:    map[string]conclusion{"O-1": allocated},
		},
		{
			name:          "a stale copy of a redriven record is skipped after the redrive dead-lettered",
			prev:          retrymeta.Meta{Attempt: 2, RedriveCount: 1},
			before:        map[string]conclusion{"O-1": deadLettered(1)},
			wantRoute:     handoff.RouteSkipped,
			wantConcluded: handoff.ConclusionDeadLettered,
			wantLedger:    map[string]conclusion{"O-1": deadLettered(1)},
		},
		{
			name:          "a failed retry with attempts left is republished and concludes nothing",
			prev:          retrymeta.Meta{Attempt: 2},
			fails:         true,
			wantRoute:     handoff.RouteRetry,
			wantAllocator: true,
			wantTopics:    []string{"order-retries"},
			wantLedger:    map[string]conclusion{},
		},
		{
			name:          "the last failed attempt dead-letters and marks the order",
			prev:          retrymeta.Meta{Attempt: 4, RedriveCount: 2},
			fails:         true,
			wantRoute:     handoff.RouteDeadLetter,
			wantAllocator: true,
			wantTopics:    []string{"order-dead-letter"},
			wantLedger:    map[string]conclusion{"O-1": deadLettered(2)},
		},
		{
			name:          "an order allocated by another chain during the last attempt is not dead-lettered",
			prev:          retrymeta.Meta{Attempt: 4},
			fails:         true,
			concurrently:  &allocated,
			wantRoute:     handoff.RouteAllocated,
			wantConcluded: handoff.ConclusionAllocated,
			wantAllocator: true,
			wantTopics:    []string{"orders", "containers"},
			wantLedger:    map[string]conclusion{"O-1": allocated},
		},
		{
			name:          "an order dead-lettered by another chain during the last attempt is dead-lettered again",
			prev:          retrymeta.Meta{Attempt: 4},
			fails:         true,
			concurrently:  &conclusion{Outcome: handoff.ConclusionDeadLettered},
			wantRoute:     handoff.RouteDeadLetter,
			wantAllocator: true,
			wantTopics:    []string{"order-dead-letter"},
			wantLedger:    map[string]conclusion{"O-1": deadLettered(0)},
		},
		{
			name:       "an unreadable ledger hands nothing off",
			prev:       retrymeta.Meta{Attempt: 1},
			readErr:    dbDown,
			wantErr:    dbDown,
			wantLedger: map[string]conclusion{},
		},
		{
			name:          "an unrecorded allocation emits nothing and is processed again",
			prev:          retrymeta.Meta{Attempt: 1},
			markErr:       dbDown,
			wantAllocator: true,
			wantErr:       dbDown,
			wantLedger:    map[string]conclusion{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ledger := &fakeLedger{orders: map[string]conclusion{}, readErr: tt.readErr, markErr: tt.markErr}
			for id, c := range tt.before {
				ledger.orders[id] = c
			}
			ran := false
			w := &recordingWriter{}
			p := &handoff.Processor{
				Allocator: allocatorFunc(func(_ context.Context, o events.OrderCreated) (allocation.Result, error) {
					ran = true
					if tt.concurrently != nil {
						ledger.mu.Lock()
						ledger.orders[o.OrderID] = *tt.concurrently
						ledger.mu.Unlock()
					}
					if tt.fails {
						return allocation.Result{}, down
					}
					return allocation.Result{Outcome: allocation.Allocated, OrderID: o.OrderID, ContainerID: "C-1"}, nil
				}),
				Router: newRouter(w),
				Ledger: ledger,
			}

			d, err := p.Process(t.Context(), orderRecord(t, "O-1"), tt.prev)

			if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Fatalf("Process error = %v, want %v", err, tt.wantErr)
			}
			if err == nil && (d.Route != tt.wantRoute || d.Concluded != tt.wantConcluded || d.OrderID != "O-1") {
				t.Errorf("decision = route %q concluded %q order %q; want %q %q O-1", d.Route, d.Concluded, d.OrderID, tt.wantRoute, tt.wantConcluded)
			}
			if ran != tt.wantAllocator {
				t.Errorf("allocation ran = %t, want %t", ran, tt.wantAllocator)
			}
			var topics []string
			for _, call := range w.calls {
				for _, m := range call {
					topics = append(topics, m.Topic)
				}
			}
			if diff := cmp.Diff(tt.wantTopics, topics); diff != "" {
				t.Errorf("written topics mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantLedger, ledger.orders); diff != "" {
				t.Errorf("ledger mismatch (-want +got):\n%s", diff)
			}
		})
	}
}
