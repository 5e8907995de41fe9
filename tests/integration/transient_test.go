package integration_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/failure"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/events"
	"github.com/reeferdlq/reefer-dlq/services/container-inventory-mock/inventorymock/calls"
	"github.com/reeferdlq/reefer-dlq/services/container-inventory-mock/inventorymock/faults"
	"github.com/reeferdlq/reefer-dlq/tests/integration/harness"
	"github.com/reeferdlq/reefer-dlq/tests/integration/outcomes"
)

// TestScenarioTransient: the inventory fails the first two calls of every
// order with 503 (failFirst 2). Each order goes to the retry topic twice,
// with attempts 1 and 2 and delays inside the jitter bounds of the policy
// (100 ms and 200 ms base, ±10%), and is allocated on its third call.
//
// The circuit breaker stays out of the picture (this scenario is about the
// retry path; TestScenarioOutageThenRecovery is about the breaker) by
// count, not by pacing, so that no timing of a loaded machine can trip
// it: pkg/reefer/inventory opens after 10 failures in a row, or when at least
// half of 20 or more calls in a window fail. Nine transient orders make
// nine failing calls for each service (reefer-manager's first call of
// each, order-retry's attempt 1), and order-retry 18 calls in all; with
// two steady orders per transient one, which the inventory always serves
// (a rule exempts them), reefer-manager sees a third of its calls fail.
// INVENTORY_TIMEOUT is generous so that a slow call on a loaded machine
// is not a third failure, and the slow-call trip is off for the same
// reason: ten calls stalled at once by the machine, not the inventory,
// would fail together and open the breaker this test counts on.
func TestScenarioTransient(t *testing.T) {
	const n = 9
	s := harness.Start(t, harness.Options{
		Faults: faults.Profile{
			FailFirst: &faults.FailFirst{Count: 2, Status: 503},
			Rules:     []faults.Rule{{Name: "steady-orders", OrderID: "^O-STEADY-"}},
		},
		Env: map[string]string{"INVENTORY_TIMEOUT": "20s", "INVENTORY_SLOW_CALL_FLOOR": "0s"},
	})
	transient := harness.Orders("O-TRANSIENT", n)
	steady := harness.Orders("O-STEADY", 2*n)
	ctx := timeout(t, 2*time.Minute)
	for i, o := range transient {
		if err := s.ProduceOrders(ctx, o, steady[2*i], steady[2*i+1]); err != nil {
			t.Fatal(err)
		}
	}

	ids := append(harness.IDs(transient), harness.IDs(steady)...)
	r := settle(t, s, ids, 2*time.Minute)
	checkConsistent(t, r, ids)
	if got := len(r.States(ids)[outcomes.Allocated]); got != len(ids) {
		t.Errorf("%d of %d orders allocated, want all", got, len(ids))
	}
	for _, o := range steady {
		if hops := len(r.Order(o.OrderID).Retries); hops != 0 {
			t.Errorf("steady order %s: %d retry records, want none", o.OrderID, hops)
		}
	}
	for _, o := range transient {
		checkTransientOrder(t, s, r.Order(o.OrderID), o)
	}
}

// checkTransientOrder checks one failFirst-2 order: two retry records with
// attempts 1 and 2, each due after the policy's delay for its attempt, and
// three inventory calls: two injected 503s, then the real allocation.
func checkTransientOrder(t *testing.T, s *harness.Stack, o *outcomes.Order, order events.OrderCreated) {
	t.Helper()
	var attempts []int
	for _, h := range o.Retries {
		attempts = append(attempts, h.Meta.Attempt)
		m := h.Meta
		if m.ErrorClass != failure.Transient {
			t.Errorf("order %s attempt %d: x-error-class %q, want transient", o.ID, m.Attempt, m.ErrorClass)
		}
		// RETRY_BASE_DELAY 100ms doubled per attempt, ±10% (proportional
		// jitter); the headers are in whole milliseconds.
		base := 100 * time.Millisecond << (m.Attempt - 1)
		lo, hi := base*9/10-time.Millisecond, base*11/10+time.Millisecond
		if d := m.DueAt.Sub(m.LastFailureAt); d < lo || d > hi {
			t.Errorf("order %s attempt %d: due %s after the failure, want within [%s, %s]", o.ID, m.Attempt, d, lo, hi)
		}
	}
	slices.Sort(attempts)
	if !slices.Equal(attempts, []int{1, 2}) {
		t.Errorf("order %s: retry records with attempts %v, want [1 2]\n%s", o.ID, attempts, o.History())
	}
	got, err := s.Inventory.Admin.Calls(timeout(t, 10*time.Second), calls.Query{OrderID: order.OrderID, Route: "allocate"})
	if err != nil {
		t.Fatal(err)
	}
	var answers []string
	for _, c := range got {
		answers = append(answers, fmt.Sprintf("%s %d", c.Fault, c.Status))
	}
	if want := []string{"failFirst 503", "failFirst 503", "none 200"}; !slices.Equal(answers, want) {
		t.Errorf("order %s: inventory calls answered %v, want %v", o.ID, answers, want)
	}
}
