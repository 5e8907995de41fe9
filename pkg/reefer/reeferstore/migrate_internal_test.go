package reeferstore

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/reeferdlq/reefer-dlq/pkg/reefer/allocation"
	"github.com/reeferdlq/reefer-dlq/pkg/testkit/pgtest"
)

// A database of schema version 3 (allocations + order_conclusions) moves
// to order_states with every order's state, and the reefers that
// dead-lettered orders held (the leak of version 3) go back to the pool:
// whether goose brought it to version 3, or the migrator before goose
// did (its versions in schema_migrations, which goose adopts without
// running them again).
func TestMigrationFromVersion3KeepsStatesAndFreesLeakedReefers(t *testing.T) {
	type db struct {
		name string
		url  func(t *testing.T) string
	}
	for _, tt := range []struct {
		db
		legacy bool
	}{
		{db{"sqlite", func(t *testing.T) string { return "sqlite:" + filepath.Join(t.TempDir(), "v3.db") }}, false},
		{db{"sqlite", func(t *testing.T) string { return "sqlite:" + filepath.Join(t.TempDir(), "v3.db") }}, true},
		{db{"postgres", func(t *testing.T) string { return pgtest.Start(t) }}, false},
		{db{"postgres", func(t *testing.T) string { return pgtest.Start(t) }}, true},
	} {
		name := tt.name + "/goose"
		if tt.legacy {
			name = tt.name + "/schema_migrations"
		}
		t.Run(name, func(t *testing.T) {
			ctx := t.Context()
			s, err := Open(ctx, tt.url(t), slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close() })
			if tt.legacy {
				applyBeforeGoose(t, s, migrations[:3])
			} else if err := s.migrateTo(ctx, 3); err != nil {
				t.Fatalf("migrate to version 3: %v", err)
			}
			// Version 3's rows: O-alloc allocated, O-retry reserved (in
			// retry), O-leak dead-lettered still holding C-0003, O-dead
			// dead-lettered without a reefer.
			for _, stmt := range []string{
				`INSERT INTO reefers (container_id, capacity, status, order_id) VALUES
					('C-0001', 10, 'allocated', 'O-alloc'), ('C-0002', 10, 'allocated', 'O-retry'),
					('C-0003', 10, 'allocated', 'O-leak'), ('C-0004', 10, 'free', NULL)`,
				`INSERT INTO allocations (order_id, container_id, quantity) VALUES ('O-alloc', 'C-0001', 5), ('O-retry', 'C-0002', 5), ('O-leak', 'C-0003', 5)`,
				`INSERT INTO order_conclusions (order_id, outcome, redrive_count) VALUES ('O-alloc', 'allocated', 0), ('O-leak', 'dead-lettered', 0), ('O-dead', 'dead-lettered', 2)`,
			} {
				if err := s.db.WithContext(ctx).Exec(stmt).Error; err != nil {
					t.Fatalf("%s: %v", stmt, err)
				}
			}

			if err := s.Migrate(ctx); err != nil {
				t.Fatalf("Migrate: %v", err)
			}

			want := map[string]struct {
				state      allocation.State
				container  string
				generation int
			}{
				"O-alloc": {allocation.StateAllocated, "C-0001", 0},
				"O-retry": {allocation.StateReserved, "C-0002", 0},
				"O-leak":  {allocation.StateDeadLettered, "", 0},
				"O-dead":  {allocation.StateDeadLettered, "", 2},
			}
			for id, w := range want {
				o, ok, err := s.Order(ctx, id)
				if err != nil || !ok {
					t.Fatalf("Order(%s) = %t, %v", id, ok, err)
				}
				if o.State != w.state || o.ContainerID != w.container || o.Generation != w.generation {
					t.Errorf("%s = %s %q generation %d; want %s %q generation %d", id, o.State, o.ContainerID, o.Generation, w.state, w.container, w.generation)
				}
			}
			if r, err := s.Reefer(ctx, "C-0003"); err != nil || r.Status != StatusFree {
				t.Errorf("C-0003, leaked by the dead-lettered O-leak = %+v, %v; want free", r, err)
			}
			held, err := s.HeldByUnallocated(ctx)
			if err != nil || len(held) > 0 {
				t.Errorf("HeldByUnallocated = %v, %v; want none", held, err)
			}
			if v, err := s.SchemaVersion(ctx); err != nil || v != LatestSchemaVersion() {
				t.Errorf("SchemaVersion = %d, %v; want %d", v, err, LatestSchemaVersion())
			}
			if err := s.db.WithContext(ctx).Exec(`SELECT 1 FROM schema_migrations`).Error; err == nil {
				t.Error("schema_migrations is still there after goose adopted its versions")
			}
			// Again: nothing left to adopt or to apply.
			if err := s.Migrate(ctx); err != nil {
				t.Fatalf("Migrate again: %v", err)
			}
			// The view keeps readers of the old table working.
			var n int64
			if err := s.db.WithContext(context.Background()).Raw(`SELECT COUNT(*) FROM allocations`).Scan(&n).Error; err != nil || n != 2 {
				t.Errorf("allocations view: %d rows, %v; want 2", n, err)
			}
		})
	}
}

// applyBeforeGoose builds a database the way the migrator before goose
// did: each version's statements, and its row in schema_migrations.
func applyBeforeGoose(t *testing.T, s *Store, ms []migration) {
	t.Helper()
	db := s.db.WithContext(t.Context())
	if err := db.Exec(`CREATE TABLE schema_migrations (
		version    INTEGER PRIMARY KEY,
		name       TEXT NOT NULL,
		applied_at TIMESTAMP NOT NULL
	)`).Error; err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		for _, stmt := range m.statements(s.dialect) {
			if err := db.Exec(stmt).Error; err != nil {
				t.Fatalf("version %d: %s: %v", m.version, stmt, err)
			}
		}
		if err := db.Exec(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`, m.version, m.name, s.now()).Error; err != nil {
			t.Fatal(err)
		}
	}
}
