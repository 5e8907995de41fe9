package retrier_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/scheduler/schedulertest"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/reeferstore"
	"github.com/reeferdlq/reefer-dlq/pkg/testkit/pgtest"
	"github.com/reeferdlq/reefer-dlq/services/container-inventory-mock/inventorymock/calls"
	"github.com/reeferdlq/reefer-dlq/services/container-inventory-mock/inventorymock/faults"
)

// BenchmarkRetryLateness measures how late retries run through the whole
// service: the embedded broker, the database, the real inventory mock over
// HTTP, the scheduler and the hand-off. Each iteration publishes
// ORDER_RETRY_BENCH_RECORDS retry records (default 10,000) with delays
// spread uniformly over 0.1 s to ORDER_RETRY_BENCH_MAX_DELAY (default 5s)
// to a running order-retry, with the inventory healthy, and waits until
// every order is allocated. It reports:
//
//   - lateness-p50-ms, lateness-p99-ms, lateness-max-ms: the inventory call's
//     time (from the mock's call log) minus the record's x-retry-due-at. It
//     includes the database step that comes before the call, so it bounds
//     the scheduler's own lateness from above;
//   - early-runs: calls before the due time (must be 0);
//   - within-50ms-%: the share of the service's own lateness histogram
//     (order_retry_lateness_seconds: start minus due) at or below 50 ms.
//
// Issue 5's goal is a p99 of at most 50 ms and no early run:
//
//	go test -run '^$' -bench RetryLateness -benchtime 1x ./retrier
//
// ORDER_RETRY_BENCH_STORE=postgres runs it on Postgres (pgtest) instead of
// SQLite.
func BenchmarkRetryLateness(b *testing.B) {
	records, maxDelay := schedulertest.Workload(b, "ORDER_RETRY_BENCH_", 10000, 5*time.Second)
	const minDelay = schedulertest.MinDelay
	var dbURL string
	switch s := os.Getenv("ORDER_RETRY_BENCH_STORE"); s {
	case "", "sqlite":
	case "postgres":
		dbURL = pgtest.Start(b)
	default:
		b.Fatalf("ORDER_RETRY_BENCH_STORE=%q: want sqlite or postgres", s)
	}

	e := newEnv(b, dbURL)
	cfg := e.config(map[string]string{"LOG_LEVEL": "warn", "REEFER_FLEET_SIZE": strconv.Itoa(records)})
	ctx := context.Background()
	// The fleet grows by one reefer per order and iteration.
	store, err := reeferstore.Open(ctx, cfg.DatabaseURL, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	e.setFaults(faults.Profile{})
	e.start(cfg)

	rng := rand.New(rand.NewPCG(5, 10))
	var (
		lateness  []time.Duration
		early     int
		iteration int
	)
	for b.Loop() {
		iteration++
		if err := store.SeedFleet(ctx, iteration*records); err != nil {
			b.Fatal(err)
		}
		ids := orderIDs(fmt.Sprintf("B%d", iteration), records)
		origs := e.publishOrders(ids...)
		// The first attempt, reefer-manager's, wrote the allocation (2) and
		// then failed at the inventory (3): the case retries exist for.
		for chunk := range slices.Chunk(ids, 100) {
			reqs := make([]reeferstore.Request, len(chunk))
			for i, id := range chunk {
				reqs[i] = reeferstore.Request{OrderID: id, Quantity: 10}
			}
			if _, err := store.AllocateBatch(ctx, reqs); err != nil {
				b.Fatal(err)
			}
		}
		before, err := e.mock.Stats(ctx)
		if err != nil {
			b.Fatal(err)
		}
		after := uint64(before.Calls.Calls) // call numbers count from 1

		// Due times count from a moment after the records are written and
		// fetched, so that the harness's own time does not count as
		// lateness: the delays are what they say.
		const lead = 2 * time.Second
		base := time.Now().Add(lead).Truncate(time.Millisecond)
		due := make(map[string]time.Time, records)
		msgs := make([]kafka.Message, len(origs))
		for i, o := range origs {
			// The header has millisecond resolution.
			d := base.Add(minDelay + time.Duration(rng.Int64N(int64(maxDelay-minDelay)))).Truncate(time.Millisecond)
			due[string(o.Key)] = d
			msgs[i] = retryRecord(o, 1, d)
		}
		e.produce(msgs...)
		if late := time.Since(base); late > 0 {
			b.Fatalf("writing %d records took %s longer than the lead of %s; raise the lead", records, late, lead)
		}

		// Poll the counters, not the call log: the benchmark shares the CPU
		// with the service.
		waitFor(b, maxDelay+lead+60*time.Second, "every order allocated", func() bool {
			st, err := e.mock.Stats(ctx)
			return err == nil && st.Calls.Calls-before.Calls.Calls >= int64(records)
		})
		got, err := e.mock.Calls(ctx, calls.Query{Route: faults.RouteAllocate, After: after})
		if err != nil {
			b.Fatal(err)
		}
		for _, c := range got {
			d, ok := due[c.OrderID]
			if !ok || c.Status != 200 {
				b.Fatalf("unexpected inventory call %+v", c)
			}
			late := c.Time.Sub(d)
			lateness = append(lateness, late)
			if late < 0 {
				early++
			}
		}
	}
	e.waitAllCommitted(60 * time.Second)

	schedulertest.ReportLateness(b, lateness, early)
	count := metric(b, cfg.HTTPAddr, "order_retry_lateness_seconds_count")
	within := metric(b, cfg.HTTPAddr, `order_retry_lateness_seconds_bucket{le="0.05"}`)
	b.ReportMetric(100*within/count, "within-50ms-%")
	b.ReportMetric(float64(records), "records/op")
}
