package reeferstore

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/database"
	"github.com/pressly/goose/v3/lock"
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
	{
		version: 7,
		name:    "releases checked again after a late inventory call",
		// Every release leaves a row here, and the Releaser releases the
		// pair in the inventory once more when it is RELEASE_RECHECK_AFTER
		// old: an allocation call in flight when the release ran (another
		// chain's, or one whose process died before it could record the
		// answer) can land in the inventory after it. released_ms is Unix
		// milliseconds: an integer compares the same on both dialects.
		postgres: []string{createReleaseRechecks},
		sqlite:   []string{createReleaseRechecks},
	},
	{
		version: 8,
		name:    "releases the inventory refused",
		// A reefer whose release the inventory refused for good is
		// quarantined (it leaves the pool); the refusal is kept here with
		// its order, because the inventory may hold the reefer for that
		// order: Reopen refuses to give the order a second one, and every
		// sweep asks the inventory again until it releases it.
		postgres: []string{createRefusedReleases},
		sqlite:   []string{createRefusedReleases},
	},
}

// createRefusedReleases is the refused_releases table of migration 8.
const createRefusedReleases = `CREATE TABLE refused_releases (
	container_id TEXT NOT NULL,
	order_id     TEXT NOT NULL,
	refused_ms   BIGINT NOT NULL,
	PRIMARY KEY (container_id, order_id)
)`

// createReleaseRechecks is the release_rechecks table of migration 7.
const createReleaseRechecks = `CREATE TABLE release_rechecks (
	container_id TEXT NOT NULL,
	order_id     TEXT NOT NULL,
	released_ms  BIGINT NOT NULL,
	PRIMARY KEY (container_id, order_id)
)`

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

// migrationLock is the Postgres advisory lock key that serialises the
// move from the legacy schema_migrations table (see adoptLegacyVersions)
// when several replicas start at once. goose's own session lock
// (lock.DefaultLockID) serialises the migrations themselves.
const migrationLock = 7_417_001

// versionTable is goose's table of applied versions.
const versionTable = "goose_db_version"

// Migrate brings the schema up to the newest version, with goose
// (github.com/pressly/goose/v3): each migration runs in its own
// transaction together with the row that records it in goose_db_version,
// so a crash never leaves a half-applied version. On Postgres a session
// advisory lock makes replicas that start at once take turns; running
// Migrate again is a no-op. A database migrated before goose (its
// versions in schema_migrations) is adopted first, without running
// anything again.
func (s *Store) Migrate(ctx context.Context) error {
	if err := s.adoptLegacyVersions(ctx); err != nil {
		return fmt.Errorf("migrate schema: %w", classify(err))
	}
	p, err := s.migrator()
	if err != nil {
		return fmt.Errorf("migrate schema: %w", err)
	}
	results, err := p.Up(ctx)
	for _, r := range results {
		if r.Error == nil {
			s.log.InfoContext(ctx, "applied schema migration", "version", r.Source.Version, "name", migrationName(r.Source.Version), "took", r.Duration)
		}
	}
	if err != nil {
		return fmt.Errorf("migrate schema: %w", classify(err))
	}
	return nil
}

// migrateTo applies the migrations up to version, for tests of a later
// migration on the data of an earlier schema.
func (s *Store) migrateTo(ctx context.Context, version int) error {
	p, err := s.migrator()
	if err != nil {
		return err
	}
	_, err = p.UpTo(ctx, int64(version))
	return err
}

// SchemaVersion returns the newest applied migration.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	p, err := s.migrator()
	if err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	v, err := p.GetDBVersion(ctx)
	if err != nil {
		return 0, fmt.Errorf("read schema version: %w", classify(err))
	}
	return int(v), nil
}

// LatestSchemaVersion is the version Migrate brings a database to.
func LatestSchemaVersion() int { return migrations[len(migrations)-1].version }

// migrator is a goose provider of the migrations above, for the store's
// dialect: each a Go migration that runs the dialect's statements in the
// transaction goose opens for it.
func (s *Store) migrator() (*goose.Provider, error) {
	db, err := s.db.DB()
	if err != nil {
		return nil, err
	}
	steps := make([]*goose.Migration, 0, len(migrations))
	for _, m := range migrations {
		stmts := m.statements(s.dialect)
		steps = append(steps, goose.NewGoMigration(int64(m.version), &goose.GoFunc{
			RunTx: func(ctx context.Context, tx *sql.Tx) error {
				for _, stmt := range stmts {
					if _, err := tx.ExecContext(ctx, stmt); err != nil {
						return fmt.Errorf("version %d (%s): %w", m.version, m.name, err)
					}
				}
				return nil
			},
		}, nil))
	}
	opts := []goose.ProviderOption{
		goose.WithGoMigrations(steps...),
		goose.WithDisableGlobalRegistry(true),
		goose.WithStore(s.versionStore()),
	}
	if s.dialect == dialectPostgres {
		// Retried every second for up to 5 minutes: a replica waits for
		// another's migrations, never for goose's default 5 s period.
		locker, err := lock.NewPostgresSessionLocker(lock.WithLockTimeout(1, 300))
		if err != nil {
			return nil, err
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	}
	// The store names the dialect; DialectCustom says so.
	return goose.NewProvider(goose.DialectCustom, db, nil, opts...)
}

// versionStore is goose's store of goose_db_version for the dialect.
func (s *Store) versionStore() database.Store {
	d := database.DialectSQLite3
	if s.dialect == dialectPostgres {
		d = database.DialectPostgres
	}
	store, err := database.NewStore(d, versionTable)
	if err != nil {
		panic(fmt.Sprintf("reeferstore: goose store for %s: %v", d, err)) // both dialects are goose's own
	}
	return store
}

// migrationName is the name of migration version v, for logs.
func migrationName(v int64) string {
	for _, m := range migrations {
		if int64(m.version) == v {
			return m.name
		}
	}
	return ""
}

// adoptLegacyVersions moves the versions a database recorded before goose
// (schema_migrations, versions 1 to 6) into goose_db_version, and drops
// the old table, in one transaction: goose then sees them applied and
// runs only what is newer. It does nothing on a database without
// schema_migrations (a new one, or one adopted already).
func (s *Store) adoptLegacyVersions(ctx context.Context) error {
	exists := `SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'`
	if s.dialect == dialectPostgres {
		exists = `SELECT COUNT(*) FROM pg_tables WHERE schemaname = current_schema() AND tablename = 'schema_migrations'`
	}
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if s.dialect == dialectPostgres {
			if err := tx.Exec(`SELECT pg_advisory_xact_lock(?)`, migrationLock).Error; err != nil {
				return err
			}
		}
		var n int64
		if err := scan(tx.Raw(exists), &n); err != nil {
			return fmt.Errorf("look for schema_migrations: %w", err)
		}
		if n == 0 {
			return nil
		}
		var versions []int64
		if err := scan(tx.Raw(`SELECT version FROM schema_migrations ORDER BY version`), &versions); err != nil {
			return fmt.Errorf("read schema_migrations: %w", err)
		}
		sqlTx := tx.Statement.ConnPool // the transaction's connection
		store := s.versionStore()
		if err := store.CreateVersionTable(ctx, sqlTx); err != nil {
			return fmt.Errorf("create %s: %w", versionTable, err)
		}
		// Version 0 is the row goose writes when it creates the table.
		for _, v := range append([]int64{0}, versions...) {
			if err := store.Insert(ctx, sqlTx, database.InsertRequest{Version: v}); err != nil {
				return fmt.Errorf("record version %d in %s: %w", v, versionTable, err)
			}
		}
		if err := tx.Exec(`DROP TABLE schema_migrations`).Error; err != nil {
			return fmt.Errorf("drop schema_migrations: %w", err)
		}
		s.log.InfoContext(ctx, "adopted the schema versions of schema_migrations into goose", "versions", versions)
		return nil
	})
}
