package integration_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/retrymeta"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/inventory"
	"github.com/reeferdlq/reefer-dlq/services/container-inventory-mock/inventorymock/faults"
	"github.com/reeferdlq/reefer-dlq/tests/integration/harness"
	"github.com/reeferdlq/reefer-dlq/tests/integration/outcomes"
)

// TestScenarioOutageThenRecovery: the inventory is down for longer than the
// retry budget, so every order is dead-lettered with max-attempts after
// RETRY_MAX_ATTEMPTS attempts. `dlq redrive --when-healthy` is started
// while the inventory is still down: it waits for the health probe, the
// inventory heals, and the redrive sends every dead letter back through
// order-retry, which allocates each order exactly once.
func TestScenarioOutageThenRecovery(t *testing.T) {
	const n = 100
	s := harness.Start(t, harness.Options{Faults: faults.Profile{Outage: &faults.Outage{Mode: faults.OutageStatus, Status: 503}}})
	orders := harness.Orders("O-OUTAGE", n)
	ids := harness.IDs(orders)
	if err := s.ProduceOrders(timeout(t, 30*time.Second), orders...); err != nil {
		t.Fatal(err)
	}

	// Phase 1: the outage outlasts the retry budget.
	r := settle(t, s, ids, 2*time.Minute)
	checkConsistent(t, r, ids)
	if got := r.DeadLetterReasons(ids)[retrymeta.MaxAttempts]; len(got) != n {
		t.Fatalf("%d of %d orders dead-lettered with max-attempts during the outage, want all", len(got), n)
	}
	var lastDead time.Time
	for _, id := range ids {
		o := r.Order(id)
		m := o.DeadLetters[len(o.DeadLetters)-1].Meta
		if m.Attempt != 5 {
			t.Errorf("order %s: dead-lettered after attempt %d, want RETRY_MAX_ATTEMPTS (5)", id, m.Attempt)
		}
		if m.DeadLetteredAt.After(lastDead) {
			lastDead = m.DeadLetteredAt
		}
	}

	// Phase 2: redrive once the inventory is healthy. The probe is the
	// command dlq's help gives, `--when-healthy http://inventory:8081/readyz`:
	// the real dlq binary against the real mock over the network, whose
	// /readyz fails while the outage is injected. Were it 200, dlq would not
	// wait and the "waiting for" check below would fail.
	probe := harness.InventoryURL + "/readyz"
	run, err := s.StartDLQ(timeout(t, time.Minute), "redrive", "--reason", "max-attempts",
		"--when-healthy", probe, "--probe-interval", "200ms", "--healthy-after", "2", "--yes")
	if err != nil {
		t.Fatal(err)
	}
	// The outage lasts until the services' circuit breakers, which tripped
	// during it, would let a probe through (pkg/reefer/inventory's open timeout),
	// then heals: the first redriven orders then meet a closing breaker,
	// not an open one.
	time.Sleep(time.Until(lastDead.Add(inventory.DefaultOpenTimeout + time.Second)))
	if _, err := s.Inventory.Admin.Heal(timeout(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	res, err := run.Wait(timeout(t, 2*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("dlq redrive exited %d:\n%s", res.ExitCode, res.Output)
	if res.ExitCode != 0 {
		t.Fatalf("dlq redrive exited %d, want 0", res.ExitCode)
	}
	if !strings.Contains(res.Output, "waiting for") {
		t.Errorf("dlq redrive did not wait for the health probe (output above)")
	}

	r = settleAllocated(t, s, ids, 2*time.Minute)
	checkConsistent(t, r, ids)
	if got := len(r.States(ids)[outcomes.Allocated]); got != n {
		t.Errorf("%d of %d orders allocated after the redrive, want all", got, n)
	}
	// dlq writes each redriven record with attempt 0 and redrive count 1;
	// a later hop of the same order (a retry after the redrive) keeps the
	// redrive count but counts attempts again.
	for _, id := range ids {
		o := r.Order(id)
		redriven := slices.DeleteFunc(slices.Clone(o.Retries), func(h outcomes.Hop) bool {
			return h.Meta.RedriveCount == 0 || h.Meta.Attempt != 0
		})
		if len(redriven) != 1 || redriven[0].Meta.RedriveCount != 1 {
			t.Errorf("order %s: %d records written by the redrive, want exactly one with x-dlq-redrive-count 1", id, len(redriven))
		}
	}
}
