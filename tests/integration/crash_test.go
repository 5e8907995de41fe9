package integration_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/retrymeta"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/events"
	"github.com/reeferdlq/reefer-dlq/services/container-inventory-mock/inventorymock/faults"
	"github.com/reeferdlq/reefer-dlq/tests/integration/harness"
	"github.com/reeferdlq/reefer-dlq/tests/integration/outcomes"
)

// TestScenarioCrash: 2,000 orders flow through an inventory that fails 30%
// of the calls (503) and refuses some orders for good (422), while
// reefer-manager and order-retry are killed with SIGKILL at random moments
// and restarted, and Postgres is restarted in the middle. Every order ends
// in exactly one terminal state (allocated, rejected or dead-lettered),
// none is lost, none is allocated twice.
//
// The moments come from a seed printed in the log; CRASH_SEED=<seed>
// replays them (the broker and the services still interleave differently).
func TestScenarioCrash(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("CRASH_SEED"); v != "" {
		var err error
		if seed, err = strconv.ParseUint(v, 10, 64); err != nil {
			t.Fatalf("CRASH_SEED=%q: want a decimal number", v)
		}
	}
	t.Logf("CRASH_SEED=%d", seed)
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))

	fifth := int64(seed)
	s := harness.Start(t, harness.Options{
		Faults: faults.Profile{
			Seed:        &fifth,
			ErrorRate:   0.3,
			ErrorStatus: 503,
			Rules:       []faults.Rule{{Name: "refuse-perm-orders", OrderID: "^O-CRASH-PERM-", Status: 422}},
		},
		Env: map[string]string{
			// A retry budget (0.25+0.5+1+2 s) longer than a Postgres restart.
			"RETRY_BASE_DELAY":  "250ms",
			"RETRY_MAX_DELAY":   "5s",
			"REEFER_FLEET_SIZE": "2500",
		},
	})

	// 1,900 ordinary orders, 50 the inventory refuses (422), 50 too big for
	// any reefer (rejected), shuffled.
	regular := harness.Orders("O-CRASH", 1900)
	perm := harness.Orders("O-CRASH-PERM", 50)
	var big []events.OrderCreated
	for i := range 50 {
		big = append(big, harness.Order(fmt.Sprintf("O-CRASH-BIG-%05d", i+1), 500))
	}
	all := append(append(append([]events.OrderCreated(nil), regular...), perm...), big...)
	rng.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
	ids := harness.IDs(all)

	// Orders arrive over about half a minute while things break.
	const batch = 50
	produced := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		for b := 0; b < len(all); b += batch {
			if err := s.ProduceOrders(ctx, all[b:min(b+batch, len(all))]...); err != nil {
				produced <- err
				return
			}
			time.Sleep(700 * time.Millisecond)
		}
		produced <- nil
	}()

	ctx := timeout(t, 3*time.Minute)
	pause := func(minMs, maxMs int) { time.Sleep(time.Duration(minMs+rng.IntN(maxMs-minMs)) * time.Millisecond) }
	crash := func(svc *harness.Service) {
		t.Helper()
		if err := svc.Kill(ctx); err != nil {
			t.Fatal(err)
		}
		down := time.Now()
		pause(100, 1000)
		if err := svc.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Logf("killed %s, back after %s", svc.Name, time.Since(down).Round(time.Millisecond))
	}
	// A service is killed again only once its consumer group is stable
	// without the dead member (see harness.Stack.WaitGroupStable).
	stable := func() {
		t.Helper()
		start := time.Now()
		for _, g := range []struct{ group, topic string }{{harness.ManagerGroup, s.Topics.Orders}, {harness.RetryGroup, s.Topics.Retry}} {
			if err := s.WaitGroupStable(ctx, g.group, g.topic, 1); err != nil {
				t.Fatal(err)
			}
		}
		t.Logf("consumer groups stable again after %s", time.Since(start).Round(time.Millisecond))
	}
	manager, retrier := s.Managers[0], s.Retry

	pause(500, 3000)
	crash(manager)
	pause(500, 2000)
	crash(retrier)
	pause(500, 2000)
	down := time.Now()
	if err := s.Postgres.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("restarted postgres in %s", time.Since(down).Round(time.Millisecond))
	stable()
	pause(0, 2000)
	crash(retrier)
	pause(0, 1000)
	crash(manager)
	if err := <-produced; err != nil {
		t.Fatal(err)
	}

	r := settle(t, s, ids, 4*time.Minute)
	checkConsistent(t, r, ids)
	for _, id := range harness.IDs(regular) {
		if o := r.Order(id); o.State() == outcomes.DeadLettered && o.DeadLetterReason() != retrymeta.MaxAttempts {
			t.Errorf("order %s: dead-lettered with %s, want allocated or (its attempts used up) max-attempts", id, o.DeadLetterReason())
		}
	}
	for _, id := range harness.IDs(perm) {
		if o := r.Order(id); o.State() != outcomes.DeadLettered || o.DeadLetterReason() != retrymeta.PermanentError {
			t.Errorf("order %s: %s (%s), want dead-lettered with %s", id, o.State(), o.DeadLetterReason(), retrymeta.PermanentError)
		}
	}
	for _, id := range harness.IDs(big) {
		if o := r.Order(id); o.State() != outcomes.Rejected {
			t.Errorf("order %s: %s, want rejected (no reefer holds 500)", id, o.State())
		}
	}
}
