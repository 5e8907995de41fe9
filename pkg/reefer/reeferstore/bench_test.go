package reeferstore_test

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/reeferdlq/reefer-dlq/pkg/reefer/reeferstore"
)

// benchCases: concurrency is the number of goroutines allocating at once
// (16 is about what a service with MAX_IN_FLIGHT=16 puts on the store);
// batch is the number of orders per transaction (1 is Allocate).
var benchCases = []struct{ concurrency, batch int }{
	{16, 1},
	{16, 16},
	{4, 16},
	{2, 64},
}

// BenchmarkPostgresAllocate measures allocations per second on Postgres
// with 16 concurrent callers, one order per transaction (batch-1, what
// Allocate does) and 16 orders per transaction (AllocateBatch).
func BenchmarkPostgresAllocate(b *testing.B) {
	admin, dsn := startPostgres(b)
	var seq atomic.Int64
	for _, bc := range benchCases {
		b.Run(fmt.Sprintf("concurrency-%d/batch-%d", bc.concurrency, bc.batch), func(b *testing.B) {
			url := createDatabase(b, admin, dsn, fmt.Sprintf("bench_%d", seq.Add(1)))
			benchmarkAllocate(b, url, bc.concurrency, bc.batch)
		})
	}
}

// BenchmarkSQLiteAllocate is the same on the demo's embedded SQLite.
func BenchmarkSQLiteAllocate(b *testing.B) {
	for _, bc := range benchCases {
		b.Run(fmt.Sprintf("concurrency-%d/batch-%d", bc.concurrency, bc.batch), func(b *testing.B) {
			benchmarkAllocate(b, "sqlite:"+filepath.Join(b.TempDir(), "bench.db"), bc.concurrency, bc.batch)
		})
	}
}

func benchmarkAllocate(b *testing.B, databaseURL string, concurrency, batch int) {
	ctx := context.Background()
	s, err := reeferstore.Open(ctx, databaseURL, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	if err := s.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	// Enough reefers that every order is served: the benchmark measures
	// allocation, not rejection.
	if err := s.SeedFleet(ctx, b.N+concurrency*batch); err != nil {
		b.Fatal(err)
	}

	// Exactly `concurrency` goroutines claim orders from a shared counter,
	// batch by batch, until b.N orders are allocated.
	var claimed atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	for range concurrency {
		wg.Go(func() {
			reqs := make([]reeferstore.Request, 0, batch)
			for {
				end := claimed.Add(int64(batch))
				start := end - int64(batch)
				if start >= int64(b.N) {
					return
				}
				reqs = reqs[:0]
				for n := start; n < min(end, int64(b.N)); n++ {
					reqs = append(reqs, reeferstore.Request{OrderID: fmt.Sprintf("O-%d", n), Quantity: 5})
				}
				results, err := s.AllocateBatch(ctx, reqs)
				if err != nil {
					b.Error(err)
					return
				}
				for _, r := range results {
					if r.Err != nil {
						b.Error(r.Err)
					}
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "orders/s")
	if n, err := s.CountAllocations(ctx); err != nil || n != int64(b.N) {
		b.Errorf("CountAllocations = %d, %v; want %d", n, err, b.N)
	}
}
