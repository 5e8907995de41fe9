package integration_test

import (
	"strings"
	"testing"
	"time"

	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/failure"
	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/retrymeta"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/events"
	"github.com/reeferdlq/reefer-dlq/services/container-inventory-mock/inventorymock/faults"
	"github.com/reeferdlq/reefer-dlq/tests/integration/harness"
	"github.com/reeferdlq/reefer-dlq/tests/integration/outcomes"
)

// TestScenarioPermanent: the inventory answers 422 for the orders a rule
// matches. Those become dead letters with reason permanent-error after one
// attempt, without ever touching the retry topic; every other order is
// allocated. The 422s do not open the circuit breaker (a permanent answer
// proves the inventory works), so the good orders never notice them.
func TestScenarioPermanent(t *testing.T) {
	const good, bad = 300, 100
	s := harness.Start(t, harness.Options{Faults: faults.Profile{Rules: []faults.Rule{{
		Name: "refuse-perm-orders", OrderID: "^O-PERM-", Status: 422,
	}}}})
	goodOrders := harness.Orders("O-OK", good)
	badOrders := harness.Orders("O-PERM", bad)
	// Interleaved, so that the refused orders sit between good ones on
	// every partition.
	all := make([]events.OrderCreated, 0, good+bad)
	for i := range good {
		all = append(all, goodOrders[i])
		if i%3 == 0 && i/3 < bad {
			all = append(all, badOrders[i/3])
		}
	}
	if err := s.ProduceOrders(timeout(t, 30*time.Second), all...); err != nil {
		t.Fatal(err)
	}
	goodIDs, badIDs := harness.IDs(goodOrders), harness.IDs(badOrders)
	r := settle(t, s, append(goodIDs, badIDs...), 2*time.Minute)
	checkConsistent(t, r, append(goodIDs, badIDs...))

	if got := len(r.States(goodIDs)[outcomes.Allocated]); got != good {
		t.Errorf("%d of %d good orders allocated, want all", got, good)
	}
	for _, id := range badIDs {
		o := r.Order(id)
		if o.State() != outcomes.DeadLettered || len(o.DeadLetters) != 1 {
			t.Errorf("order %s: state %s with %d dead letters, want dead-lettered once", id, o.State(), len(o.DeadLetters))
			continue
		}
		if len(o.Retries) != 0 {
			t.Errorf("order %s: %d records on the retry topic, want none: a permanent error is never retried", id, len(o.Retries))
		}
		m := o.DeadLetters[0].Meta
		if m.DLQReason != retrymeta.PermanentError || m.Attempt != 1 || m.ErrorClass != failure.Permanent {
			t.Errorf("order %s: dead letter reason %q attempt %d class %q, want %q after attempt 1, class %q",
				id, m.DLQReason, m.Attempt, m.ErrorClass, retrymeta.PermanentError, failure.Permanent)
		}
		if !strings.Contains(m.ErrorMessage, "422") && !strings.Contains(m.ErrorMessage, "nprocessable") {
			t.Errorf("order %s: x-error-message %q does not say the inventory answered 422", id, m.ErrorMessage)
		}
		if m.OriginalTopic != s.Topics.Orders {
			t.Errorf("order %s: x-original-topic %q, want %q", id, m.OriginalTopic, s.Topics.Orders)
		}
	}
}
