// Package reeferstore keeps the reefer fleet and its allocations in a SQL
// database through GORM: step (2) of the pattern's happy path, "write the
// allocation in the reefer database".
//
// # Two databases, one behaviour
//
// Deployments and tests use Postgres. The local demo uses an embedded
// SQLite file (github.com/glebarez/sqlite, pure Go, no cgo) so that it
// needs nothing installed. [Open] picks the driver from DATABASE_URL. The
// production binaries are built with the nosqlite tag (make build) and
// link no SQLite driver: sqlite.go and nosqlite.go.
// Both run the same migrations (written per dialect) and pass the same
// test suite, which is what makes the demo a faithful picture of
// production.
//
// # Allocation without double booking
//
// [Store.Allocate] is atomic (one statement on Postgres, one transaction
// on SQLite):
//
//  1. If the order already has an allocation, return it. A retried or
//     redelivered order therefore gets the same reefer: the step is
//     idempotent, which is what makes retrying it safe.
//  2. Otherwise take the smallest free reefer whose capacity fits
//     (deterministic: by capacity, then id), mark it allocated, and
//     insert the allocation. No reefer fits: allocation.ErrNoCapacity.
//
// Two concurrent allocations must never take the same reefer. On Postgres
// the candidate is selected with FOR UPDATE SKIP LOCKED: an allocation
// that finds the best reefer locked by another one skips it and takes the
// next, so allocations run in parallel instead of queueing on one hot
// row. (Trade-off: a reefer locked by a transaction that then rolls back
// is invisible for that instant, so with very few free reefers left an
// order can be rejected that a moment later would have fitted.) SQLite has
// a single writer; every transaction begins IMMEDIATE, taking the write
// lock up front, so allocations simply run one after the other.
//
// Each order has one row in order_states (see conclusion.go and
// allocation.State): reserved, allocated, dead-lettered or reopened. The
// allocation above is its reservation, a compare-and-set: INSERT ... ON
// CONFLICT reads the newest committed row and locks it, so two concurrent
// allocations for the same order (a redelivery racing the original, or
// two retry chains) reserve once, the loser is re-run and returns the
// winner's reefer, and a dead-lettered order gets none
// (allocation.ErrConcluded). The other transitions (MarkAllocatedBatch,
// DeadLetter, Reopen) change the order and its reefer in one statement or
// transaction too: a dead letter releases the reefer, or quarantines it
// after an inventory 409 (status quarantined, with a reason).
// Constraints in the schema (one order per reefer, one reefer per order,
// status matches order) make double booking impossible even if the code
// had a bug.
//
// [Store.AllocateBatch] does the same for many orders at once, as if they
// came one after the other in order id order: on Postgres in one
// statement (a recursive query that picks a reefer for each order in
// turn), on SQLite in one transaction. That saves a commit and the round
// trips per order. Every allocation writes the order's allocation row
// before it marks the reefer, and a batch writes its rows in order id
// order, so statements racing for the same orders wait for each other in
// one direction only and never deadlock.
//
// # Schema changes
//
// [Store.Migrate] applies numbered migrations with goose
// (github.com/pressly/goose/v3), recorded in goose_db_version, each in its
// own transaction, under goose's advisory lock on Postgres so that
// replicas starting together do not race. Each migration is plain SQL per
// dialect, in migrate.go. Run it at start; running it again is a no-op. A
// database migrated before goose (schema_migrations) is adopted once,
// nothing run again. The goose CLI reads the same table
// (goose -table goose_db_version postgres "$DATABASE_URL" status). [Store.SeedFleet] then makes sure the
// fleet exists (ids C-0001, C-0002, ...; capacities 10 to 100, so an order
// above 100 is always rejected).
//
// # Errors
//
// Every error carries a class from package failure: an unreachable,
// restarting, locked or overloaded database is transient (the order goes
// to the retry topic), a broken constraint or a schema mismatch is
// permanent. Domain code never sees gorm types: rows are unexported and
// converted to [Reefer] at the edge.
package reeferstore
