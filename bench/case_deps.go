package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/reeferdlq/reefer-dlq/bench/report"
	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/failure"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/inventory"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/reeferstore"
)

// caseDependencies is case 2: the two things each order must do, each
// alone, as fast as they go, the way the services do them:
//
//   - a reefer allocation in Postgres (pkg/reefer/reeferstore). reefer-manager
//     gathers the allocations of its concurrent records into batches of up
//     to 128 orders, one statement each, one batch at a time (group
//     commit): the limit it is held to. order-retry allocates one order
//     per statement, from up to MAX_IN_FLIGHT concurrent records: measured
//     too, as the limit of case 6;
//   - an allocation call to the inventory (pkg/reefer/inventory: keep-alive,
//     circuit breaker) from MAX_IN_FLIGHT concurrent callers.
func caseDependencies(ctx context.Context, e *env) ([]report.Row, error) {
	n := e.p.orders
	var rows []report.Row
	for _, mode := range []struct {
		key, name, params string
		run               func(ctx context.Context, store *reeferstore.Store) error
	}{
		{
			key: "2-db", name: "Postgres allocation alone, batched as reefer-manager does",
			params: fmt.Sprintf("%d orders, reeferstore.AllocateBatch of %d orders (one statement), one batch at a time, fleet of %d", n, allocationBatch, n+100),
			run: func(ctx context.Context, store *reeferstore.Store) error {
				for start := 0; start < n; start += allocationBatch {
					reqs := make([]reeferstore.Request, 0, allocationBatch)
					for i := start; i < min(n, start+allocationBatch); i++ {
						reqs = append(reqs, reeferstore.Request{OrderID: fmt.Sprintf("D-%07d", i), Quantity: 10})
					}
					results, err := store.AllocateBatch(ctx, reqs)
					if err != nil {
						return err
					}
					for _, r := range results {
						if r.Err != nil {
							return fmt.Errorf("order %s: %w", r.OrderID, r.Err)
						}
					}
				}
				return nil
			},
		},
		{
			key: "2-db-single", name: "Postgres allocation alone, one order per statement (as order-retry does)",
			params: fmt.Sprintf("%d reeferstore.Allocate calls (one statement each), %d concurrent callers, fleet of %d", n, e.p.inFlight, n+100),
			run: func(ctx context.Context, store *reeferstore.Store) error {
				return concurrently(ctx, n, e.p.inFlight, func(ctx context.Context, i int) error {
					_, err := store.Allocate(ctx, fmt.Sprintf("S-%07d", i), 10)
					return err
				})
			},
		},
	} {
		url, err := e.database(ctx, strings.ReplaceAll(mode.key, "-", "_"))
		if err != nil {
			return rows, err
		}
		w, err := e.allocateAlone(ctx, url, mode.key, mode.run)
		if err != nil {
			return rows, fmt.Errorf("%s: %w", mode.key, err)
		}
		rows = append(rows, report.Row{
			Case: "2", Key: mode.key, Name: mode.name, Params: mode.params,
			Value: round(float64(n)/w.Elapsed.Seconds(), 0), Unit: "allocations/s",
			Metrics: w.metrics(nil),
		})
	}

	mock, stopMock, err := e.inventory(ctx, preset("healthy"), 0)
	if err != nil {
		return rows, err
	}
	defer stopMock()
	client, err := inventory.New(inventory.Config{BaseURL: "http://" + mock.Addr(), Timeout: e.p.callTimeout})
	if err != nil {
		return rows, err
	}
	sw, err := e.startWatch("2-inv")
	if err != nil {
		return rows, err
	}
	// The slowest call is reported. In a --quick smoke run a call that
	// times out anyway is counted, not fatal: on a loaded machine under
	// -race it says the machine was busy, not that the program is wrong.
	var slowest atomic.Int64
	var timeouts atomic.Int64
	err = concurrently(ctx, n, e.p.inFlight, func(ctx context.Context, i int) error {
		began := time.Now()
		err := client.Allocate(ctx, fmt.Sprintf("R-%07d", i), fmt.Sprintf("I-%07d", i))
		took := int64(time.Since(began))
		for {
			old := slowest.Load()
			if took <= old || slowest.CompareAndSwap(old, took) {
				break
			}
		}
		if err != nil && e.p.quick && ctx.Err() == nil && failure.ReasonOf(err) == "timeout" {
			timeouts.Add(1)
			return nil
		}
		return err
	})
	winv := sw.stop()
	if err != nil {
		return rows, fmt.Errorf("inventory calls: %w", err)
	}
	rows = append(rows, report.Row{
		Case: "2", Key: "2-inv", Name: "inventory call alone",
		Params: fmt.Sprintf("%d inventory.Client.Allocate calls (HTTP PUT, keep-alive) to the mock, %d concurrent callers", n, e.p.inFlight),
		Value:  round(float64(n)/winv.Elapsed.Seconds(), 0), Unit: "calls/s",
		Metrics: winv.metrics(map[string]float64{
			"slowest_call_ms": round(float64(slowest.Load())/float64(time.Millisecond), 1),
			"timeouts":        float64(timeouts.Load()),
		}),
		Note: "client and mock share the bench process and its cores",
	})
	return rows, nil
}

// allocationBatch is reefer-manager's largest allocation batch
// (maxAllocationBatch in package manager).
const allocationBatch = 128

// allocateAlone prepares a fleet in a fresh database and times run.
func (e *env) allocateAlone(ctx context.Context, url, name string, run func(context.Context, *reeferstore.Store) error) (window, error) {
	store, err := reeferstore.Open(ctx, url, e.svcLog)
	if err != nil {
		return window{}, err
	}
	defer store.Close()
	if err := store.Migrate(ctx); err != nil {
		return window{}, err
	}
	if err := store.SeedFleet(ctx, e.p.orders+100); err != nil {
		return window{}, err
	}
	sw, err := e.startWatch(name)
	if err != nil {
		return window{}, err
	}
	err = run(ctx, store)
	w := sw.stop()
	if err != nil {
		return window{}, err
	}
	if got, err := store.CountAllocations(ctx); err != nil || got != int64(e.p.orders) {
		return window{}, fmt.Errorf("%d allocations in the database (%v), want %d", got, err, e.p.orders)
	}
	return w, nil
}

// concurrently calls f for 0..n-1 from workers goroutines and returns the
// first error.
func concurrently(ctx context.Context, n, workers int, f func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := f(ctx, i); err != nil {
					cancel(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil && err != context.Canceled {
		return err
	}
	return ctx.Err()
}
