package allocation_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/failure"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/allocation"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/events"
)

// fakeStore is an in-memory Store with the same contract as reeferstore:
// smallest fitting free reefer, idempotent per order.
type fakeStore struct {
	mu          sync.Mutex
	capacity    map[string]int    // container id -> capacity
	allocations map[string]string // order id -> container id
	err         error             // returned instead of allocating when set
	calls       int
}

func newFakeStore(capacity map[string]int) *fakeStore {
	return &fakeStore{capacity: capacity, allocations: map[string]string{}}
}

func (s *fakeStore) Allocate(_ context.Context, orderID string, quantity int) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if s.err != nil {
		return "", s.err
	}
	if id, ok := s.allocations[orderID]; ok {
		return id, nil
	}
	taken := map[string]bool{}
	for _, id := range s.allocations {
		taken[id] = true
	}
	best := ""
	for id, c := range s.capacity {
		if taken[id] || c < quantity {
			continue
		}
		if best == "" || c < s.capacity[best] || (c == s.capacity[best] && id < best) {
			best = id
		}
	}
	if best == "" {
		return "", fmt.Errorf("quantity %d: %w", quantity, allocation.ErrNoCapacity)
	}
	s.allocations[orderID] = best
	return best, nil
}

// fakeInventory answers like the legacy inventory: 200 for a new or
// repeated allocation, 409 when the container belongs to another order.
type fakeInventory struct {
	mu       sync.Mutex
	assigned map[string]string // container id -> order id
	status   int               // answer this HTTP status instead when non-zero
	calls    int
}

func newFakeInventory() *fakeInventory {
	return &fakeInventory{assigned: map[string]string{}}
}

func (inv *fakeInventory) Allocate(_ context.Context, containerID, orderID string) error {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	inv.calls++
	if inv.status != 0 {
		return failure.FromHTTPStatus(inv.status, http.Header{}, time.Now())
	}
	if owner, ok := inv.assigned[containerID]; ok && owner != orderID {
		return failure.FromHTTPStatus(http.StatusConflict, http.Header{}, time.Now())
	}
	inv.assigned[containerID] = orderID
	return nil
}

func order(id string, quantity int) events.OrderCreated {
	return events.OrderCreated{
		OrderID:              id,
		ProductID:            "P-01",
		CustomerID:           "CU-01",
		Quantity:             quantity,
		PickupCity:           "Oakland",
		DestinationCity:      "Shanghai",
		ExpectedDeliveryDate: "2030-01-31",
	}
}

func TestServiceAllocate(t *testing.T) {
	fleet := map[string]int{"C-0001": 10, "C-0002": 50, "C-0003": 100}

	tests := []struct {
		name         string
		order        events.OrderCreated
		storeErr     error
		invStatus    int
		preassigned  map[string]string // inventory state before the call
		want         allocation.Result
		wantClass    failure.Class // empty: no error expected
		wantInMsg    string
		wantInvCalls int
	}{
		{
			name:         "allocates the smallest reefer that fits",
			order:        order("O-1", 40),
			want:         allocation.Result{Outcome: allocation.Allocated, OrderID: "O-1", ContainerID: "C-0002"},
			wantInvCalls: 1,
		},
		{
			name:         "no capacity is a rejection, not an error",
			order:        order("O-2", 101),
			want:         allocation.Result{Outcome: allocation.Rejected, OrderID: "O-2", Reason: "no free reefer can hold quantity 101"},
			wantInvCalls: 0,
		},
		{
			name:         "transient store failure is transient and skips the inventory",
			order:        order("O-3", 5),
			storeErr:     failure.NewTransient("database-unavailable", errors.New("connection refused")),
			wantClass:    failure.Transient,
			wantInMsg:    "allocate order O-3: reserve reefer: ",
			wantInvCalls: 0,
		},
		{
			name:         "permanent store failure stays permanent",
			order:        order("O-4", 5),
			storeErr:     failure.NewPermanent("database-constraint", errors.New("check constraint violated")),
			wantClass:    failure.Permanent,
			wantInMsg:    "allocate order O-4: reserve reefer: ",
			wantInvCalls: 0,
		},
		{
			name:         "unclassified store failure is treated as transient",
			order:        order("O-5", 5),
			storeErr:     errors.New("driver: bad connection"),
			wantClass:    failure.Transient,
			wantInMsg:    "driver: bad connection",
			wantInvCalls: 0,
		},
		{
			name:         "inventory 503 is transient and names the container",
			order:        order("O-6", 5),
			invStatus:    http.StatusServiceUnavailable,
			wantClass:    failure.Transient,
			wantInMsg:    "allocate order O-6: update inventory for C-0001: ",
			wantInvCalls: 1,
		},
		{
			name:         "inventory 409 (container owned by another order) is permanent",
			order:        order("O-7", 5),
			preassigned:  map[string]string{"C-0001": "O-other"},
			wantClass:    failure.Permanent,
			wantInMsg:    "update inventory for C-0001",
			wantInvCalls: 1,
		},
		{
			name:         "inventory 422 is permanent",
			order:        order("O-8", 5),
			invStatus:    http.StatusUnprocessableEntity,
			wantClass:    failure.Permanent,
			wantInMsg:    "update inventory for C-0001",
			wantInvCalls: 1,
		},
		{
			name:         "a non-positive quantity is permanent and touches nothing",
			order:        order("O-9", 0),
			wantClass:    failure.Permanent,
			wantInMsg:    "quantity 0 is not positive",
			wantInvCalls: 0,
		},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := newFakeStore(fleet)
			store.err = tt.storeErr
			inv := newFakeInventory()
			inv.status = tt.invStatus
			for c, o := range tt.preassigned {
				inv.assigned[c] = o
			}
			svc := allocation.Service{Store: store, Inventory: inv}

			got, err := svc.Allocate(t.Context(), tt.order)

			if tt.wantClass == "" {
				if err != nil {
					t.Fatalf("Allocate: unexpected error %v", err)
				}
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("Allocate result (-want +got):\n%s", diff)
				}
			} else {
				if err == nil {
					t.Fatalf("Allocate = %+v, want a %s error", got, tt.wantClass)
				}
				if c := failure.ClassOf(err); c != tt.wantClass {
					t.Errorf("ClassOf(%v) = %q, want %q", err, c, tt.wantClass)
				}
				if !strings.Contains(err.Error(), tt.wantInMsg) {
					t.Errorf("error %q does not contain %q", err, tt.wantInMsg)
				}
				if diff := cmp.Diff(allocation.Result{}, got); diff != "" {
					t.Errorf("a failed Allocate returned a result (-want +got):\n%s", diff)
				}
			}
			if inv.calls != tt.wantInvCalls {
				t.Errorf("inventory calls = %d, want %d", inv.calls, tt.wantInvCalls)
			}
		})
	}
}

func TestServiceAllocateKeepsStoreErrorChain(t *testing.T) {
	cause := errors.New("dial tcp 10.0.0.1:5432: connection refused")
	svc := allocation.Service{
		Store:     &fakeStore{err: failure.NewTransient("database-unavailable", cause)},
		Inventory: newFakeInventory(),
	}
	_, err := svc.Allocate(t.Context(), order("O-1", 5))
	if !errors.Is(err, cause) {
		t.Errorf("errors.Is(%v, cause) = false; the root cause must stay reachable", err)
	}
}

// A retried or redelivered order runs the use case again; it must land on
// the same reefer and leave exactly one allocation behind.
func TestServiceAllocateIsIdempotent(t *testing.T) {
	store := newFakeStore(map[string]int{"C-0001": 10, "C-0002": 20})
	inv := newFakeInventory()
	svc := allocation.Service{Store: store, Inventory: inv}

	first, err := svc.Allocate(t.Context(), order("O-1", 15))
	if err != nil {
		t.Fatalf("first Allocate: %v", err)
	}
	second, err := svc.Allocate(t.Context(), order("O-1", 15))
	if err != nil {
		t.Fatalf("second Allocate: %v", err)
	}
	if diff := cmp.Diff(first, second); diff != "" {
		t.Errorf("rerun changed the result (-first +second):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]string{"O-1": "C-0002"}, store.allocations); diff != "" {
		t.Errorf("store allocations (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]string{"C-0002": "O-1"}, inv.assigned); diff != "" {
		t.Errorf("inventory state (-want +got):\n%s", diff)
	}
}

// After a transient inventory failure the retry must reuse the reefer the
// first attempt reserved, not reserve a second one.
func TestServiceAllocateRetryAfterTransientInventoryReusesReefer(t *testing.T) {
	store := newFakeStore(map[string]int{"C-0001": 10, "C-0002": 10})
	inv := newFakeInventory()
	svc := allocation.Service{Store: store, Inventory: inv}

	inv.status = http.StatusServiceUnavailable
	if _, err := svc.Allocate(t.Context(), order("O-1", 5)); failure.ClassOf(err) != failure.Transient {
		t.Fatalf("first attempt: err = %v, want a transient error", err)
	}

	inv.status = 0
	got, err := svc.Allocate(t.Context(), order("O-1", 5))
	if err != nil {
		t.Fatalf("retry: %v", err)
	}
	want := allocation.Result{Outcome: allocation.Allocated, OrderID: "O-1", ContainerID: "C-0001"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("retry result (-want +got):\n%s", diff)
	}
	if len(store.allocations) != 1 {
		t.Errorf("store holds %d allocations, want 1", len(store.allocations))
	}
}
