package integration_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/reeferdlq/reefer-dlq/services/container-inventory-mock/inventorymock/faults"
	"github.com/reeferdlq/reefer-dlq/tests/integration/harness"
	"github.com/reeferdlq/reefer-dlq/tests/integration/outcomes"
)

// TestScenarioCommitModes kills reefer-manager while hundreds of orders are
// between fetch and hand-off (the inventory answers after 3 s), then heals
// the inventory and starts reefer-manager again.
//
// With COMMIT_MODE=before-processing those orders were committed when
// fetched: the restarted manager starts after them, and they are lost,
// with no outcome, no retry record and no dead letter. With the default
// (after-handoff) none were committed, so they are delivered again and
// every order is allocated.
func TestScenarioCommitModes(t *testing.T) {
	for _, tc := range []struct {
		mode     string
		wantLoss bool
	}{
		{"before-processing", true},
		{"after-handoff", false},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			lost, r, ids := killDuringHandoff(t, tc.mode)
			t.Logf("COMMIT_MODE=%s: %d of %d orders lost after a kill between fetch and hand-off", tc.mode, len(lost), len(ids))
			if tc.wantLoss {
				if len(lost) == 0 {
					t.Errorf("no order lost: the kill did not land between commit and hand-off")
				}
				// What survived must still be consistent.
				checkConsistent(t, r, ids)
				return
			}
			if len(lost) > 0 {
				t.Errorf("%d orders lost (first: %s), want none", len(lost), lost[0])
			}
			checkConsistent(t, r, ids)
			if got := len(r.States(ids)[outcomes.Allocated]); got != len(ids) {
				t.Errorf("%d of %d orders allocated, want all", got, len(ids))
			}
		})
	}
}

// killDuringHandoff runs the kill for one commit mode and returns the ids
// of the orders without an outcome once everything is quiet.
func killDuringHandoff(t *testing.T, mode string) (lost []string, r *outcomes.Report, ids []string) {
	const n = 400
	slow := faults.Duration(3 * time.Second)
	s := harness.Start(t, harness.Options{
		Faults:     faults.Profile{Latency: slow, Routes: []string{"allocate"}},
		Env:        map[string]string{"INVENTORY_TIMEOUT": "10s"},
		ManagerEnv: map[string]string{"COMMIT_MODE": mode},
	})
	orders := harness.Orders("O-COMMIT", n)
	ids = harness.IDs(orders)
	if err := s.ProduceOrders(timeout(t, 30*time.Second), orders...); err != nil {
		t.Fatal(err)
	}

	// Kill once the manager is waiting on many inventory calls: each of
	// those records is fetched and not handed off yet.
	ctx := timeout(t, time.Minute)
	inFlight := 0
	err := retryUntil(ctx, 50*time.Millisecond, func() error {
		var err error
		inFlight, err = s.Inventory.CallsInFlight(ctx)
		if err != nil {
			return err
		}
		if inFlight < 100 {
			return fmt.Errorf("only %d inventory calls in flight", inFlight)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	manager := s.Managers[0]
	if err := manager.Kill(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("killed %s with %d inventory calls in flight", manager.Name, inFlight)
	if _, err := s.Inventory.Admin.Heal(ctx); err != nil {
		t.Fatal(err)
	}
	if err := manager.Start(ctx); err != nil {
		t.Fatal(err)
	}

	r, err = s.WaitQuiet(timeout(t, 2*time.Minute), ids, 3*time.Second)
	if err != nil {
		if r != nil {
			t.Logf("outcome so far: %s", r.Summary(ids))
		}
		t.Fatal(err)
	}
	t.Logf("quiet: %s", r.Summary(ids))
	return r.States(ids)[outcomes.Pending], r, ids
}
