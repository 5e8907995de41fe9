package reeferstore

import (
	"context"
	"fmt"
	"strings"

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
	{
		version: 4,
		name:    "one state row per order, quarantined reefers",
		// order_states replaces allocations and order_conclusions: one row
		// per order whose state only compare-and-set transitions change,
		// in the same statement or transaction as the reefer they reserve
		// or release (see conclusion.go). The CHECK ties the two: an order
		// holds a reefer exactly when it is reserved or allocated. A
		// reefer the inventory refused (409) leaves the pool as
		// 'quarantined', with the reason. Reefers held by dead-lettered
		// orders (the leak of version 3) are given back. allocations
		// stays as a view for readers of the old table.
		postgres: []string{
			`ALTER TABLE reefers DROP CONSTRAINT reefers_status_check, DROP CONSTRAINT reefers_check`,
			`ALTER TABLE reefers ADD COLUMN quarantine_reason TEXT`,
			`ALTER TABLE reefers
				ADD CONSTRAINT reefers_status_check CHECK (status IN ('free', 'allocated', 'quarantined')),
				ADD CONSTRAINT reefers_held_check CHECK ((status = 'allocated') = (order_id IS NOT NULL)),
				ADD CONSTRAINT reefers_quarantine_check CHECK ((status = 'quarantined') = (quarantine_reason IS NOT NULL))`,
			createOrderStates("TIMESTAMPTZ"),
			copyOrderStates,
			`DROP TABLE allocations`,
			`DROP TABLE order_conclusions`,
			freeUnheldReefers,
			createAllocationsView,
		},
		sqlite: []string{
			// SQLite cannot change a CHECK: rebuild reefers. Its children
			// (allocations, order_conclusions) go first, so that no
			// foreign key points at the old table when it is dropped.
			`CREATE TABLE reefers_v4 (
				container_id      TEXT PRIMARY KEY,
				capacity          INTEGER NOT NULL CHECK (capacity > 0),
				status            TEXT NOT NULL DEFAULT 'free' CHECK (status IN ('free', 'allocated', 'quarantined')),
				order_id          TEXT UNIQUE,
				quarantine_reason TEXT,
				updated_at        DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
				CHECK ((status = 'allocated') = (order_id IS NOT NULL)),
				CHECK ((status = 'quarantined') = (quarantine_reason IS NOT NULL))
			)`,
			`INSERT INTO reefers_v4 (container_id, capacity, status, order_id, updated_at)
				SELECT container_id, capacity, status, order_id, updated_at FROM reefers`,
			strings.ReplaceAll(createOrderStates("DATETIME"), "REFERENCES reefers ", "REFERENCES reefers_v4 "),
			copyOrderStates,
			`DROP TABLE allocations`,
			`DROP TABLE order_conclusions`,
			`DROP TABLE reefers`,
			`ALTER TABLE reefers_v4 RENAME TO reefers`,
			`CREATE INDEX reefers_free_by_capacity ON reefers (capacity, container_id) WHERE status = 'free'`,
			freeUnheldReefers,
			createAllocationsView,
		},
	},
	{
		version: 5,
		name:    "dead letters known to be written, claims with their owner",
		// A dead-lettered order records whether its dead letter reached
		// the dead-letter topic, and which process claimed it. The record
		// that claimed it, read again (its offset lags behind while later
		// records wait for their due time, so every rebalance re-reads
		// it), writes the dead letter again only when it is not written,
		// and, in another process, only after the claim's lease:
		// otherwise a routine rebalance wrote the same dead letter twice,
		// and a person saw two.
		postgres: []string{
			`ALTER TABLE order_states ADD COLUMN dead_letter_written BOOLEAN NOT NULL DEFAULT FALSE`,
			`ALTER TABLE order_states ADD COLUMN claim_owner TEXT`,
		},
		sqlite: []string{
			`ALTER TABLE order_states ADD COLUMN dead_letter_written BOOLEAN NOT NULL DEFAULT FALSE`,
			`ALTER TABLE order_states ADD COLUMN claim_owner TEXT`,
		},
	},
	{
		version: 6,
		name:    "reefers pending their inventory release",
		// A dead-lettered attempt's reefer stays held by the order until
		// the inventory released it (allocation.Releaser). The flag and
		// its partial index make the sweep read only those reefers, not
		// every allocated one: with a large fleet the scan took a second.
		postgres: []string{
			`ALTER TABLE reefers ADD COLUMN release_pending BOOLEAN NOT NULL DEFAULT FALSE`,
			markPendingReleases,
			`CREATE INDEX reefers_release_pending ON reefers (updated_at, container_id) WHERE release_pending`,
		},
		sqlite: []string{
			`ALTER TABLE reefers ADD COLUMN release_pending BOOLEAN NOT NULL DEFAULT FALSE`,
			markPendingReleases,
			`CREATE INDEX reefers_release_pending ON reefers (updated_at, container_id) WHERE release_pending`,
		},
	},
}

// markPendingReleases flags the reefers held by an order that does not
// hold them (version 5 left them so, unflagged).
const markPendingReleases = `UPDATE reefers SET release_pending = TRUE
	WHERE status = 'allocated' AND NOT EXISTS (SELECT 1 FROM order_states o WHERE o.order_id = reefers.order_id
		AND o.state IN ('reserved', 'allocated') AND o.container_id = reefers.container_id)`

// createOrderStates is the order_states table of migration 4.
func createOrderStates(timestamp string) string {
	return `CREATE TABLE order_states (
		order_id      TEXT PRIMARY KEY,
		state         TEXT NOT NULL CHECK (state IN ('reserved', 'allocated', 'dead-lettered', 'reopened')),
		container_id  TEXT UNIQUE REFERENCES reefers (container_id),
		quantity      INTEGER CHECK (quantity > 0),
		generation    INTEGER NOT NULL DEFAULT 0 CHECK (generation >= 0),
		claim_token   TEXT,
		error_class   TEXT,
		error_reason  TEXT,
		error_message TEXT,
		version       INTEGER NOT NULL DEFAULT 1,
		updated_at    ` + timestamp + ` NOT NULL,
		CHECK ((state IN ('reserved', 'allocated')) = (container_id IS NOT NULL)),
		CHECK ((state = 'dead-lettered') = (claim_token IS NOT NULL))
	)`
}

// copyOrderStates carries version 3's rows over: an allocation is
// allocated when its conclusion says so and reserved when it has none; a
// dead-lettered order is dead-lettered and, if it still held a reefer
// (version 3 never gave it back), holds none now: freeUnheldReefers
// returns it to the pool. Claims of version 3 had no token.
const copyOrderStates = `INSERT INTO order_states (order_id, state, container_id, quantity, generation, claim_token, version, updated_at)
	SELECT a.order_id, CASE WHEN c.outcome = 'allocated' THEN 'allocated' ELSE 'reserved' END,
		a.container_id, a.quantity, 0, NULL, 1, a.allocated_at
	FROM allocations a LEFT JOIN order_conclusions c ON c.order_id = a.order_id
	WHERE c.outcome IS NULL OR c.outcome = 'allocated'
	UNION ALL
	SELECT c.order_id, 'dead-lettered', NULL, NULL, c.redrive_count, 'migrated', 1, c.concluded_at
	FROM order_conclusions c
	WHERE c.outcome = 'dead-lettered'`

// freeUnheldReefers gives back every reefer no order holds.
const freeUnheldReefers = `UPDATE reefers SET status = 'free', order_id = NULL
	WHERE status = 'allocated' AND NOT EXISTS (SELECT 1 FROM order_states o WHERE o.container_id = reefers.container_id)`

// createAllocationsView keeps the table of versions 2-3 readable: one row
// per order that holds a reefer.
const createAllocationsView = `CREATE VIEW allocations AS
	SELECT order_id, container_id, quantity, updated_at AS allocated_at
	FROM order_states WHERE container_id IS NOT NULL`

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
