package allocation

import (
	"context"
	"errors"
	"fmt"

	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/failure"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/events"
)

// ErrNoCapacity is returned by a [Store] when no free reefer can hold the
// order's quantity. [Service.Allocate] turns it into a Rejected result.
var ErrNoCapacity = errors.New("no reefer with enough capacity")

// Store reserves a reefer for an order: step (2), the reefer database.
//
// Allocate returns the id of the reefer now allocated to orderID. It is
// idempotent: called again for the same order it returns the same reefer
// and allocates nothing new. It returns an error wrapping [ErrNoCapacity]
// when no free reefer has capacity >= quantity, and one wrapping
// [ErrConcluded] when the order is dead-lettered (a store with order
// states; see State); any other error carries a failure class
// (connection problems transient, broken constraints permanent).
type Store interface {
	Allocate(ctx context.Context, orderID string, quantity int) (containerID string, err error)
}

// Inventory records the allocation in the legacy container inventory:
// step (3). Allocate must be idempotent for the same (containerID,
// orderID) pair, and its errors carry a failure class.
type Inventory interface {
	Allocate(ctx context.Context, containerID, orderID string) error
}

// Outcome is the business result of an allocation attempt that did not fail.
type Outcome string

const (
	// Allocated: a reefer is reserved in the database and the inventory.
	Allocated Outcome = "allocated"
	// Rejected: no reefer can take the order; final, never retried.
	Rejected Outcome = "rejected"
)

// Result describes a conclusive answer for one order. ContainerID is set
// when Outcome is Allocated, Reason when it is Rejected.
type Result struct {
	Outcome     Outcome
	OrderID     string
	ContainerID string
	Reason      string
}

// Service runs the allocation use case over a Store and an Inventory.
// Its zero value is not usable; both fields are required.
type Service struct {
	Store     Store
	Inventory Inventory
}

// Allocate runs steps (2) and (3) for one order.
//
// It returns a Result and a nil error for a conclusive answer (Allocated
// or Rejected). Otherwise it returns an error that says which step failed
// and keeps the dependency's failure class, so the caller can route the
// order to the retry topic (transient) or the dead-letter topic
// (permanent) with failure.ClassOf. An error that wraps context.Canceled
// means the caller is shutting down: leave the record uncommitted.
func (s Service) Allocate(ctx context.Context, order events.OrderCreated) (Result, error) {
	if err := validate(order); err != nil {
		return Result{}, fmt.Errorf("allocate order %q: %w", order.OrderID, err)
	}

	containerID, err := s.Store.Allocate(ctx, order.OrderID, order.Quantity)
	if errors.Is(err, ErrNoCapacity) {
		return Result{
			Outcome: Rejected,
			OrderID: order.OrderID,
			Reason:  fmt.Sprintf("no free reefer can hold quantity %d", order.Quantity),
		}, nil
	}
	if err != nil {
		return Result{}, fmt.Errorf("allocate order %s: reserve reefer: %w", order.OrderID, err)
	}

	if err := s.Inventory.Allocate(ctx, containerID, order.OrderID); err != nil {
		return Result{}, fmt.Errorf("allocate order %s: %w", order.OrderID, &InventoryError{ContainerID: containerID, Err: err})
	}

	return Result{Outcome: Allocated, OrderID: order.OrderID, ContainerID: containerID}, nil
}

// InventoryError is step (3)'s failure: it names the reefer the
// inventory did not record, so that a 409 (another order holds it there)
// can take that reefer out of the pool (see Claim.Quarantine).
type InventoryError struct {
	ContainerID string
	Err         error
}

func (e *InventoryError) Error() string {
	return "update inventory for " + e.ContainerID + ": " + e.Err.Error()
}

func (e *InventoryError) Unwrap() error { return e.Err }

// RefusedContainer returns the reefer of an inventory 409 in err: the
// inventory says another order holds it, so no order can get it until an
// operator looks. ok is false for any other error.
func RefusedContainer(err error) (containerID string, ok bool) {
	var ie *InventoryError
	if errors.As(err, &ie) && failure.ReasonOf(err) == "http-409" {
		return ie.ContainerID, true
	}
	return "", false
}

// validate guards the use case against orders that can never succeed. The
// events decoder already rejects them; checking again here keeps the use
// case correct for any caller, and the error is permanent because sending
// the same order again cannot fix it.
func validate(order events.OrderCreated) error {
	switch {
	case order.OrderID == "":
		return failure.NewPermanent("invalid-order", errors.New("order id is empty"))
	case order.Quantity <= 0:
		return failure.NewPermanent("invalid-order", fmt.Errorf("quantity %d is not positive", order.Quantity))
	}
	return nil
}
