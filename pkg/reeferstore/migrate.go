package reeferstore

import (
	"context"
	"fmt"

	"gorm.io/gorm"
)

// migration is one versioned schema change, written out as plain SQL per
// dialect so that a reader (and a DBA) sees exactly what runs. Versions
// only ever grow: to change the schema, append a migration; never edit
// one that has shipped.
type migration struct {
	version  int
	name     string
	postgres []string
	sqlite   []string
}

func (m migration) statements(d dialect) []string {
	if d == dialectPostgres {
		return m.postgres
	}
	return m.sqlite
}

var migrations = []migration{
	{
		version: 1,
		name:    "create reefers",
		postgres: []string{
			`CREATE TABLE reefers (
				container_id TEXT PRIMARY KEY,
				capacity     INTEGER NOT NULL CHECK (capacity > 0),
				status       TEXT NOT NULL DEFAULT 'free' CHECK (status IN ('free', 'allocated')),
				order_id     TEXT UNIQUE,
				updated_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
				CHECK ((status = 'free') = (order_id IS NULL))
			)`,
			// Allocation looks for the smallest free reefer that fits: this
			// partial index holds exactly the candidates, in that order.
			`CREATE INDEX reefers_free_by_capacity ON reefers (capacity, container_id) WHERE status = 'free'`,
		},
		sqlite: []string{
			`CREATE TABLE reefers (
				container_id TEXT PRIMARY KEY,
				capacity     INTEGER NOT NULL CHECK (capacity > 0),
				status       TEXT NOT NULL DEFAULT 'free' CHECK (status IN ('free', 'allocated')),
				order_id     TEXT UNIQUE,
				updated_at   DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
				CHECK ((status = 'free') = (order_id IS NULL))
			)`,
			`CREATE INDEX reefers_free_by_capacity ON reefers (capacity, container_id) WHERE status = 'free'`,
		},
	},
	{
		version: 2,
		name:    "create allocations",
		// order_id as primary key makes "one allocation per order" a fact
		// the database enforces, whatever races the application has;
		// container_id UNIQUE does the same for "one order per reefer".
		postgres: []string{
			`CREATE TABLE allocations (
				order_id     TEXT PRIMARY KEY,
				container_id TEXT NOT NULL UNIQUE REFERENCES reefers (container_id),
				quantity     INTEGER NOT NULL CHECK (quantity > 0),
				allocated_at TIMESTAMPTZ NOT NULL DEFAULT now()
			)`,
		},
		sqlite: []string{
			`CREATE TABLE allocations (
				order_id     TEXT PRIMARY KEY,
				container_id TEXT NOT NULL UNIQUE REFERENCES reefers (container_id),
				quantity     INTEGER NOT NULL CHECK (quantity > 0),
				allocated_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP
			)`,
		},
	},
	{
		version: 3,
		name:    "create order conclusions",
		// One row per order that reached a terminal state, so that a
		// duplicate retry chain (see conclusion.go) can tell it is stale.
		postgres: []string{
			`CREATE TABLE order_conclusions (
				order_id      TEXT PRIMARY KEY,
				outcome       TEXT NOT NULL CHECK (outcome IN ('allocated', 'dead-lettered')),
				redrive_count INTEGER NOT NULL DEFAULT 0 CHECK (redrive_count >= 0),
				concluded_at  TIMESTAMPTZ NOT NULL DEFAULT now()
			)`,
		},
		sqlite: []string{
			`CREATE TABLE order_conclusions (
				order_id      TEXT PRIMARY KEY,
				outcome       TEXT NOT NULL CHECK (outcome IN ('allocated', 'dead-lettered')),
				redrive_count INTEGER NOT NULL DEFAULT 0 CHECK (redrive_count >= 0),
				concluded_at  DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP
			)`,
		},
	},
}

// migrationLock is the Postgres advisory lock key that serialises
// migrations when several replicas start at once (any constant works, as
// long as nothing else in the database uses it).
const migrationLock = 7_417_001

const createSchemaMigrations = `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    INTEGER PRIMARY KEY,
	name       TEXT NOT NULL,
	applied_at TIMESTAMP NOT NULL
)`

// Migrate brings the schema up to the newest version. Each migration runs
// in its own transaction together with the row that records it in
// schema_migrations, so a crash never leaves a half-applied version.
// Running Migrate again, or from several replicas at once, is a no-op.
func (s *Store) Migrate(ctx context.Context) error {
	for _, m := range migrations {
		applied, err := s.apply(ctx, m)
		if err != nil {
			return fmt.Errorf("migrate schema to version %d (%s): %w", m.version, m.name, classify(err))
		}
		if applied {
			s.log.InfoContext(ctx, "applied schema migration", "version", m.version, "name", m.name)
		}
	}
	return nil
}

// SchemaVersion returns the newest applied migration. Call it after
// Migrate (before, the schema_migrations table may not exist).
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var version int
	err := s.db.WithContext(ctx).Raw(`SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&version).Error
	if err != nil {
		return 0, fmt.Errorf("read schema version: %w", classify(err))
	}
	return version, nil
}

// LatestSchemaVersion is the version Migrate brings a database to.
func LatestSchemaVersion() int { return migrations[len(migrations)-1].version }

func (s *Store) apply(ctx context.Context, m migration) (applied bool, err error) {
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if s.dialect == dialectPostgres {
			// Held until the transaction ends. SQLite needs no lock: its
			// immediate transaction already excludes other writers.
			if err := tx.Exec(`SELECT pg_advisory_xact_lock(?)`, migrationLock).Error; err != nil {
				return err
			}
		}
		if err := tx.Exec(createSchemaMigrations).Error; err != nil {
			return err
		}
		var done int64
		if err := tx.Table("schema_migrations").Where("version = ?", m.version).Count(&done).Error; err != nil {
			return err
		}
		if done > 0 {
			return nil
		}
		for _, stmt := range m.statements(s.dialect) {
			if err := tx.Exec(stmt).Error; err != nil {
				return err
			}
		}
		applied = true
		return tx.Exec(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
			m.version, m.name, s.now()).Error
	})
	return applied && err == nil, err
}
