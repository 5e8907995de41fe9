package reeferstore_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"

	_ "github.com/glebarez/go-sqlite" // registers the "sqlite" driver for the lock holder below

	"github.com/reeferdlq/reefer-dlq/pkg/reefer/reeferstore"
)

func TestSQLiteStore(t *testing.T) {
	runSuite(t, backend{open: openSQLite, outageFailsPing: false})
}

// openSQLite opens a store on a new file. Its outage is the way SQLite
// becomes unavailable in practice: another process holds the write lock
// for longer than busy_timeout (set short here to keep the test fast).
func openSQLite(t *testing.T) (*reeferstore.Store, outage) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "reefers.db")
	s, err := reeferstore.Open(t.Context(), "sqlite:"+path+"?_pragma=busy_timeout(100)", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })

	var holder *sql.DB
	var conn *sql.Conn
	out := func(t *testing.T, down bool) {
		t.Helper()
		ctx := context.Background()
		if !down {
			if _, err := conn.ExecContext(ctx, "ROLLBACK"); err != nil {
				t.Fatalf("release the write lock: %v", err)
			}
			_ = conn.Close()
			_ = holder.Close()
			return
		}
		holder, err = sql.Open("sqlite", path)
		if err != nil {
			t.Fatal(err)
		}
		if conn, err = holder.Conn(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
			t.Fatalf("take the write lock: %v", err)
		}
	}
	return s, out
}

// Two Stores on one file stand for two processes (or the demo running
// reefer-manager and order-retry side by side). Each Store serialises its
// own writes in its pool; across Stores only SQLite's write lock does, and
// the immediate transactions plus busy_timeout must keep allocations
// correct and free of "database is locked" errors.
func TestSQLiteStoresSharingAFileNeverShareAReefer(t *testing.T) {
	path := "sqlite:" + filepath.Join(t.TempDir(), "shared.db")
	var stores [2]*reeferstore.Store
	for i := range stores {
		s, err := reeferstore.Open(t.Context(), path, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatalf("Open #%d: %v", i, err)
		}
		t.Cleanup(func() { _ = s.Close() })
		stores[i] = s
	}
	if err := stores[0].Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := stores[1].SeedFleet(t.Context(), 100); err != nil {
		t.Fatal(err)
	}

	const orders = 60
	got := make([]string, orders)
	errs := make([]error, orders)
	var wg sync.WaitGroup
	for i := range orders {
		wg.Go(func() {
			// Every order is sent through both stores, like a redelivery
			// racing the original in another process.
			id := fmt.Sprintf("O-%02d", i)
			a, errA := stores[i%2].Allocate(t.Context(), id, 5)
			b, errB := stores[(i+1)%2].Allocate(t.Context(), id, 5)
			if errA == nil && errB == nil && a != b {
				errA = fmt.Errorf("order %s got %s from one store and %s from the other", id, a, b)
			}
			got[i], errs[i] = a, errors.Join(errA, errB)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	owner := map[string]int{}
	for i, id := range got {
		if prev, ok := owner[id]; ok {
			t.Errorf("reefer %s allocated to O-%02d and O-%02d", id, prev, i)
		}
		owner[id] = i
	}
}
