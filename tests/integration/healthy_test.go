package integration_test

import (
	"testing"
	"time"

	"github.com/reeferdlq/reefer-dlq/tests/integration/harness"
	"github.com/reeferdlq/reefer-dlq/tests/integration/outcomes"
)

// TestScenarioHealthy: with a healthy inventory, 500 orders each end
// allocated exactly once: one ContainerAllocated and one
// ContainerAssignedToOrder per order after dropping duplicates by event id,
// one allocation row per order in Postgres, one allocated container per
// order in the inventory, and nothing on the retry or dead-letter topics.
// The topics have non-default names, so the services must honour
// ORDERS_TOPIC and the others.
func TestScenarioHealthy(t *testing.T) {
	const n = 500
	s := harness.Start(t, harness.Options{Topics: harness.PrefixedTopics("healthy")})
	orders := harness.Orders("O-HEALTHY", n)
	ids := harness.IDs(orders)
	if err := s.ProduceOrders(timeout(t, 30*time.Second), orders...); err != nil {
		t.Fatal(err)
	}

	r := settle(t, s, ids, 2*time.Minute)
	checkConsistent(t, r, ids)
	if got := len(r.States(ids)[outcomes.Allocated]); got != n {
		t.Errorf("%d of %d orders allocated, want all", got, n)
	}
	for _, id := range ids {
		o := r.Order(id)
		if len(o.Retries) > 0 || len(o.DeadLetters) > 0 {
			t.Errorf("order %s: %d retry records and %d dead letters, want none with a healthy inventory", id, len(o.Retries), len(o.DeadLetters))
		}
	}
	stats, err := s.Inventory.Admin.Stats(timeout(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if stats.Inventory.Allocated != n || stats.Inventory.Conflicts != 0 {
		t.Errorf("inventory: %d containers allocated and %d conflicts, want %d and 0", stats.Inventory.Allocated, stats.Inventory.Conflicts, n)
	}
}
