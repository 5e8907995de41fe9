package integration_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/reeferdlq/reefer-dlq/tests/integration/harness"
	"github.com/reeferdlq/reefer-dlq/tests/integration/outcomes"
)

// settle waits up to timeout for the orders ids to settle (harness.WaitSettled),
// logs the report's summary, and fails the test with it on timeout.
func settle(t *testing.T, s *harness.Stack, ids []string, timeout time.Duration) *outcomes.Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	start := time.Now()
	r, err := s.WaitSettled(ctx, ids)
	if err != nil {
		if r != nil {
			t.Logf("outcome so far: %s", r.Summary(ids))
		}
		t.Fatalf("%v", err)
	}
	t.Logf("settled after %s: %s", time.Since(start).Round(time.Millisecond), r.Summary(ids))
	return r
}

// settleAllocated waits until every order of ids is allocated, then
// settles. A redriven order first gets the reefer of its dead-lettered
// attempt released in the inventory, and that waits for the service's
// breaker, still open from the outage: until then the order's dead letter
// (redriven, but the report does not read resolutions) looks like an end.
func settleAllocated(t *testing.T, s *harness.Stack, ids []string, timeout time.Duration) *outcomes.Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	for {
		r, err := s.Outcomes(ctx)
		if err == nil && len(r.States(ids)[outcomes.Allocated]) == len(ids) {
			break
		}
		select {
		case <-ctx.Done():
			if r != nil {
				t.Logf("outcome so far: %s", r.Summary(ids))
			}
			t.Fatalf("not every order allocated within %s", timeout)
		case <-time.After(500 * time.Millisecond):
		}
	}
	return settle(t, s, ids, timeout)
}

// checkConsistent fails the test for every problem the report finds among ids.
func checkConsistent(t *testing.T, r *outcomes.Report, ids []string) {
	t.Helper()
	problems := r.Problems(ids)
	for i, p := range problems {
		if i == 20 {
			t.Errorf("... and %d more problems", len(problems)-i)
			break
		}
		t.Error(p)
	}
	// The records behind the first few, to see how they came about.
	for _, p := range problems[:min(len(problems), 3)] {
		t.Log(r.Order(p.OrderID).History())
	}
}

// timeout returns a context for one step of a scenario.
func timeout(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

// retryUntil calls f every interval until it returns nil or ctx ends.
func retryUntil(ctx context.Context, interval time.Duration, f func() error) error {
	for {
		err := f()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last error: %w)", ctx.Err(), err)
		case <-time.After(interval):
		}
	}
}
