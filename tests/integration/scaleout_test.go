package integration_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/reeferdlq/reefer-dlq/services/container-inventory-mock/inventorymock/faults"
	"github.com/reeferdlq/reefer-dlq/tests/integration/harness"
	"github.com/reeferdlq/reefer-dlq/tests/integration/outcomes"
)

// TestScenarioScaleOut: two reefer-manager containers in one consumer group
// share the six partitions of orders; one is stopped (SIGTERM, as a
// scale-down does) while orders keep arriving. The other takes over its
// partitions, and every order is allocated once: nothing lost, nothing
// doubled.
func TestScenarioScaleOut(t *testing.T) {
	const batches, perBatch = 10, 100
	s := harness.Start(t, harness.Options{
		Managers: 2,
		// A little latency keeps both members busy for a while.
		Faults: faults.Profile{Latency: faults.Duration(20 * time.Millisecond), Routes: []string{"allocate"}},
	})
	ctx := timeout(t, 2*time.Minute)

	// Both members hold partitions before anything is produced.
	err := retryUntil(ctx, 200*time.Millisecond, func() error {
		a, err := outcomes.Assignment(ctx, s.Kafka(), harness.ManagerGroup, s.Topics.Orders)
		if err != nil {
			return err
		}
		if len(a) != 2 || len(a["reefer-manager-1"]) == 0 || len(a["reefer-manager-2"]) == 0 {
			return fmt.Errorf("assignment %v, want both managers holding partitions", a)
		}
		t.Logf("assignment with two managers: %v", a)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	orders := harness.Orders("O-SCALE", batches*perBatch)
	ids := harness.IDs(orders)
	for b := range batches {
		if err := s.ProduceOrders(ctx, orders[b*perBatch:(b+1)*perBatch]...); err != nil {
			t.Fatal(err)
		}
		if b == batches/2 {
			// Mid-way: scale down to one member.
			if err := s.Managers[1].Stop(ctx, 15*time.Second); err != nil {
				t.Fatal(err)
			}
			t.Logf("stopped %s after %d orders", s.Managers[1].Name, (b+1)*perBatch)
		}
		time.Sleep(200 * time.Millisecond)
	}

	err = retryUntil(ctx, 200*time.Millisecond, func() error {
		a, err := outcomes.Assignment(ctx, s.Kafka(), harness.ManagerGroup, s.Topics.Orders)
		if err != nil {
			return err
		}
		if len(a) != 1 || len(a["reefer-manager-1"]) != 6 {
			return fmt.Errorf("assignment %v, want reefer-manager-1 alone with all 6 partitions", a)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	r := settle(t, s, ids, 2*time.Minute)
	checkConsistent(t, r, ids)
	if got := len(r.States(ids)[outcomes.Allocated]); got != len(ids) {
		t.Errorf("%d of %d orders allocated, want all", got, len(ids))
	}
}
