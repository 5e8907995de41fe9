package reeferstore

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm"

	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/failure"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/allocation"
)

// ErrReeferNotFound is returned by Reefer for an unknown container id.
var ErrReeferNotFound = errors.New("reefer not found")

// Request asks for a reefer for one order.
type Request struct {
	OrderID  string
	Quantity int
}

// BatchResult is the answer for one Request of AllocateBatch: the reefer
// now allocated to the order, or Err (wrapping allocation.ErrNoCapacity
// when no free reefer fits, or a permanent error for an invalid request).
type BatchResult struct {
	OrderID     string
	ContainerID string
	Err         error
}

// conflictAttempts bounds how often a transaction is re-run after losing a
// race (two transactions inserting the same order, or a deadlock). The
// re-run sees the winner's allocation and returns it, so one re-run is
// almost always enough.
const conflictAttempts = 3

// allocateOnePostgres reserves a reefer for one order in one statement,
// which Postgres runs atomically: no explicit transaction, one round
// trip, and a plan Postgres makes once per connection and reuses.
//
//   - existing: the order's row, unless it is reopened: a reserved or
//     allocated order keeps its reefer (idempotency), a dead-lettered one
//     gets none (the caller sees allocation.ErrConcluded);
//   - picked: otherwise the smallest free reefer that fits. FOR UPDATE SKIP
//     LOCKED makes concurrent statements skip a candidate another one has
//     just locked and take the next, instead of queueing behind it:
//     allocations run in parallel and never share a reefer;
//   - recorded: the compare-and-set: insert the order reserved, or move a
//     reopened order to reserved. ON CONFLICT reads the newest committed
//     row, not the statement's snapshot, and locks it: if another
//     transaction reserved or dead-lettered the order since the snapshot,
//     nothing is recorded;
//   - reserved: mark the reefer allocated, only if the order was recorded;
//   - raced: a reefer was picked but the order not recorded: the order
//     changed under the statement, which the caller runs again (it then
//     sees the winner's row in existing).
//
// The order_id key comes before the reefer's order_id in every statement,
// so two statements racing for the same order wait for each other in one
// direction and cannot deadlock.
const allocateOnePostgres = `WITH existing AS (
	SELECT state, container_id FROM order_states WHERE order_id = @order AND state <> 'reopened'
), picked AS (
	SELECT container_id FROM reefers
	WHERE status = 'free' AND capacity >= @quantity AND NOT EXISTS (SELECT 1 FROM existing)
	ORDER BY capacity, container_id
	LIMIT 1
	FOR UPDATE SKIP LOCKED
), recorded AS (
	INSERT INTO order_states (order_id, state, container_id, quantity, version, updated_at)
	SELECT @order, 'reserved', container_id, @quantity, 1, @now FROM picked
	ON CONFLICT (order_id) DO UPDATE SET ` + reserveReopened + `
	WHERE order_states.state = 'reopened'
	RETURNING container_id
), reserved AS (
	UPDATE reefers SET status = 'allocated', order_id = @order, updated_at = @now
	WHERE container_id IN (SELECT container_id FROM recorded)
)
SELECT @order AS order_id, state, container_id FROM existing
UNION ALL
SELECT @order, 'reserved', container_id FROM recorded
UNION ALL
SELECT @order, 'raced', NULL FROM picked WHERE NOT EXISTS (SELECT 1 FROM recorded)`

// reserveReopened moves a reopened order (ON CONFLICT's "excluded" row
// being the reservation) to reserved; the redrive generation stays.
const reserveReopened = `state = 'reserved', container_id = excluded.container_id, quantity = excluded.quantity,
		claim_token = NULL, error_class = NULL, error_reason = NULL, error_message = NULL,
		version = order_states.version + 1, updated_at = excluded.updated_at`

// allocateManyPostgres is allocateOnePostgres for a batch of orders, in
// one statement too: one round trip however many orders. Its parameters
// are the orders as a JSON array, [{"order_id": "O-1", "quantity": 5}, ...]
// without duplicate ids, and the time. JSON rather than two arrays: an
// array's length is visible to the planner, which then plans each batch
// anew; with a JSON parameter Postgres soon settles on one plan and reuses
// it, which halves the statement's cost.
//
//   - existing: the orders that have a row that is not reopened, as above;
//   - todo: the others, numbered in order id order;
//   - picked: one order after the other (a recursive CTE is a loop), the
//     smallest free reefer that fits, FOR UPDATE SKIP LOCKED as above.
//     This statement's own locks do not hide rows from itself, so "taken"
//     carries the reefers already picked for earlier orders of the batch.
//     "floor" is the last reefer picked and its order's quantity: for an
//     order at least that large, every fitting reefer up to the floor was
//     just taken or locked, so the index scan starts after it, and a batch
//     of similar orders costs one index step per order instead of
//     re-reading every row it took;
//   - recorded: the compare-and-set of each order, as above, sorted by
//     order id: statements racing for several of the same orders meet on
//     the first one and wait in one direction only;
//   - reserved: mark the recorded orders' reefers allocated;
//   - raced: orders that picked a reefer but were not recorded.
//
// It returns one row per order that holds a reefer, is dead-lettered or
// raced; an order without a row found no reefer that fits.
const allocateManyPostgres = `WITH RECURSIVE request AS (
	SELECT order_id, quantity FROM jsonb_to_recordset(CAST(@requests AS jsonb)) AS r (order_id text, quantity bigint)
), existing AS (
	SELECT s.order_id, s.state, s.container_id
	FROM request JOIN order_states s ON s.order_id = request.order_id
	WHERE s.state <> 'reopened'
), todo AS (
	SELECT order_id, quantity, row_number() OVER (ORDER BY order_id) AS n
	FROM request
	WHERE NOT EXISTS (SELECT 1 FROM existing WHERE existing.order_id = request.order_id)
), picked (n, order_id, quantity, container_id, taken, floor_quantity, floor_capacity, floor_id) AS (
	SELECT 0::bigint, NULL::text, NULL::bigint, NULL::text, ARRAY[]::text[], 0::bigint, 0, ''::text
	UNION ALL
	SELECT t.n, t.order_id, t.quantity, c.container_id,
		CASE WHEN c.container_id IS NULL THEN p.taken ELSE p.taken || c.container_id END,
		CASE WHEN c.container_id IS NULL THEN p.floor_quantity ELSE t.quantity END,
		COALESCE(c.capacity, p.floor_capacity),
		COALESCE(c.container_id, p.floor_id)
	FROM picked p
	JOIN todo t ON t.n = p.n + 1
	LEFT JOIN LATERAL (
		SELECT r.container_id, r.capacity FROM reefers r
		WHERE r.status = 'free' AND r.capacity >= t.quantity
			AND (r.capacity, r.container_id) > (
				CASE WHEN t.quantity >= p.floor_quantity THEN p.floor_capacity ELSE 0 END,
				CASE WHEN t.quantity >= p.floor_quantity THEN p.floor_id ELSE '' END)
			AND r.container_id <> ALL (p.taken)
		ORDER BY r.capacity, r.container_id
		LIMIT 1
		FOR UPDATE SKIP LOCKED
	) c ON true
), recorded AS (
	INSERT INTO order_states (order_id, state, container_id, quantity, version, updated_at)
	SELECT order_id, 'reserved', container_id, quantity, 1, @now FROM picked
	WHERE container_id IS NOT NULL
	ORDER BY order_id
	ON CONFLICT (order_id) DO UPDATE SET ` + reserveReopened + `
	WHERE order_states.state = 'reopened'
	RETURNING order_id, container_id
), reserved AS (
	UPDATE reefers SET status = 'allocated', order_id = recorded.order_id, updated_at = @now
	FROM recorded
	WHERE reefers.container_id = recorded.container_id
)
SELECT order_id, state, container_id FROM existing
UNION ALL
SELECT order_id, 'reserved', container_id FROM recorded
UNION ALL
SELECT order_id, 'raced', NULL FROM picked
WHERE container_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM recorded WHERE recorded.order_id = picked.order_id)`

// pickSQLite reserves the smallest free reefer that fits. SQLite has no
// row locks and no data-modifying CTEs; allocation runs as a few
// statements inside a transaction that holds the database's single write
// lock from its start (BEGIN IMMEDIATE), so allocations run one after the
// other and cannot both see the same reefer free.
const pickSQLite = `UPDATE reefers SET status = 'allocated', order_id = @order, updated_at = @now
WHERE container_id = (
	SELECT container_id FROM reefers
	WHERE status = 'free' AND capacity >= @quantity
	ORDER BY capacity, container_id
	LIMIT 1
) AND status = 'free'
RETURNING container_id`

// reserveSQLite records the reservation pickSQLite made: the same
// compare-and-set as on Postgres (insert, or move a reopened order).
const reserveSQLite = `INSERT INTO order_states (order_id, state, container_id, quantity, version, updated_at)
VALUES (@order, 'reserved', @container, @quantity, 1, @now)
ON CONFLICT (order_id) DO UPDATE SET ` + reserveReopened + `
WHERE order_states.state = 'reopened'`

// errRaced reports that an order changed between a statement's snapshot
// and its compare-and-set; the statement is run again (see lostRace).
var errRaced = errors.New("order state changed during the reservation")

// Allocate reserves a reefer for the order and returns its id, atomically
// (one statement on Postgres, one transaction on SQLite): if the order
// already holds one (reserved or allocated) it is returned unchanged
// (idempotent); otherwise, if the order is new or reopened, the smallest
// free reefer with capacity >= quantity is marked allocated and the order
// reserved. With no such reefer the error wraps allocation.ErrNoCapacity;
// for a dead-lettered order it wraps allocation.ErrConcluded. Other
// errors carry a failure class.
func (s *Store) Allocate(ctx context.Context, orderID string, quantity int) (string, error) {
	results, err := s.allocate(ctx, []Request{{OrderID: orderID, Quantity: quantity}})
	if err != nil {
		return "", fmt.Errorf("allocate reefer for order %s: %w", orderID, err)
	}
	if results[0].Err != nil {
		return "", fmt.Errorf("allocate reefer for order %s: %w", orderID, results[0].Err)
	}
	return results[0].ContainerID, nil
}

// AllocateBatch allocates reefers for many orders at once, atomically
// (one statement on Postgres, one transaction on SQLite), which saves a
// commit (a disk flush on Postgres) and the round trips per order. Each
// request gets the answer Allocate would give it with the orders
// allocated one after the other in order id order; the results are in the
// order of reqs. A request repeated in the batch gets the same reefer (the
// first occurrence's quantity is used). The returned error is for the
// batch as a whole (database unreachable) and is classified; per-order
// outcomes are in BatchResult.Err. A batch-level error fails every order
// of the batch; to find which order a permanent error belongs to, retry
// them one by one with Allocate.
//
// A batch holds its reefers' row locks until it ends, and on Postgres
// every concurrent allocation skips those rows meanwhile; a batch of a
// hundred orders takes a few milliseconds.
func (s *Store) AllocateBatch(ctx context.Context, reqs []Request) ([]BatchResult, error) {
	results, err := s.allocate(ctx, reqs)
	if err != nil {
		return nil, fmt.Errorf("allocate reefers for %d orders: %w", len(reqs), err)
	}
	return results, nil
}

func (s *Store) allocate(ctx context.Context, reqs []Request) ([]BatchResult, error) {
	// Work on the distinct valid orders, sorted by id: transactions that
	// insert overlapping orders then take the allocations' key locks in
	// the same order and cannot deadlock.
	answers := make(map[string]BatchResult, len(reqs))
	var todo []Request
	for _, r := range reqs {
		if _, seen := answers[r.OrderID]; seen {
			continue
		}
		if err := validate(r); err != nil {
			answers[r.OrderID] = BatchResult{OrderID: r.OrderID, Err: err}
			continue
		}
		answers[r.OrderID] = BatchResult{OrderID: r.OrderID}
		todo = append(todo, r)
	}
	slices.SortFunc(todo, func(a, b Request) int { return cmp.Compare(a.OrderID, b.OrderID) })

	for attempt := 1; len(todo) > 0; attempt++ {
		got, err := s.allocateAll(ctx, todo)
		if err == nil {
			for _, res := range got {
				answers[res.OrderID] = res
			}
			break
		}
		if !lostRace(err) || ctx.Err() != nil {
			return nil, classify(err)
		}
		if attempt == conflictAttempts {
			// Still losing races: busy, not broken; a later retry will win.
			return nil, failure.NewTransient("database-conflict", err)
		}
	}

	results := make([]BatchResult, len(reqs))
	for i, r := range reqs {
		results[i] = answers[r.OrderID]
	}
	return results, nil
}

// allocateAll allocates distinct, valid requests sorted by order id: on
// Postgres in one statement, on SQLite in one transaction.
func (s *Store) allocateAll(ctx context.Context, reqs []Request) ([]BatchResult, error) {
	now := s.now()
	db := s.db.WithContext(ctx)
	var rows []reservation
	var err error
	if s.dialect == dialectPostgres {
		rows, err = allocateOnPostgres(db, reqs, now)
	} else {
		err = db.Transaction(func(tx *gorm.DB) error {
			var txErr error
			rows, txErr = allocateOnSQLite(tx, reqs, now) // from scratch on a re-run
			return txErr
		})
	}
	if err != nil {
		return nil, err
	}
	byOrder := make(map[string]reservation, len(rows))
	for _, row := range rows {
		if row.State == "raced" {
			return nil, fmt.Errorf("order %s: %w", row.OrderID, errRaced)
		}
		byOrder[row.OrderID] = row
	}
	got := make([]BatchResult, len(reqs))
	for i, r := range reqs {
		row, ok := byOrder[r.OrderID]
		got[i] = BatchResult{OrderID: r.OrderID}
		switch {
		case !ok:
			got[i].Err = fmt.Errorf("quantity %d: %w", r.Quantity, allocation.ErrNoCapacity)
		case row.State == string(allocation.StateDeadLettered):
			got[i].Err = allocation.ErrConcluded
		default:
			got[i].ContainerID = deref(row.ContainerID)
		}
	}
	return got, nil
}

// reservation is one row of the allocation statements: the state an
// order is in after them, "raced" when it changed under the statement.
type reservation struct {
	OrderID     string
	State       string
	ContainerID *string
}

// allocateOnPostgres runs allocateOnePostgres or allocateManyPostgres.
func allocateOnPostgres(db *gorm.DB, reqs []Request, now time.Time) ([]reservation, error) {
	var rows []reservation
	if len(reqs) == 1 {
		args := map[string]any{"order": reqs[0].OrderID, "quantity": reqs[0].Quantity, "now": now}
		if err := db.Raw(allocateOnePostgres, args).Scan(&rows).Error; err != nil {
			return nil, err
		}
		return rows, nil
	}
	// Request with the column names the statement reads.
	type request struct {
		OrderID  string `json:"order_id"`
		Quantity int    `json:"quantity"`
	}
	list := make([]request, len(reqs))
	for i, r := range reqs {
		list[i] = request(r)
	}
	requests, err := json.Marshal(list)
	if err != nil {
		return nil, failure.NewPermanent("invalid-request", fmt.Errorf("encode the batch: %w", err))
	}
	args := map[string]any{"requests": string(requests), "now": now}
	if err := db.Raw(allocateManyPostgres, args).Scan(&rows).Error; err != nil {
		return nil, err
	}
	return rows, nil
}

// allocateOnSQLite reserves for the orders one after the other inside tx.
func allocateOnSQLite(tx *gorm.DB, reqs []Request, now time.Time) ([]reservation, error) {
	rows := make([]reservation, 0, len(reqs))
	for _, r := range reqs {
		var existing []orderRow
		if err := tx.Where("order_id = ?", r.OrderID).Limit(1).Find(&existing).Error; err != nil {
			return nil, err
		}
		if len(existing) > 0 && existing[0].State != string(allocation.StateReopened) {
			rows = append(rows, reservation{OrderID: r.OrderID, State: existing[0].State, ContainerID: existing[0].ContainerID})
			continue
		}
		var ids []string
		args := map[string]any{"order": r.OrderID, "quantity": r.Quantity, "now": now}
		if err := tx.Raw(pickSQLite, args).Scan(&ids).Error; err != nil {
			return nil, err
		}
		if len(ids) == 0 {
			continue
		}
		args["container"] = ids[0]
		if err := tx.Exec(reserveSQLite, args).Error; err != nil {
			return nil, err
		}
		rows = append(rows, reservation{OrderID: r.OrderID, State: string(allocation.StateReserved), ContainerID: &ids[0]})
	}
	return rows, nil
}

// lostRace reports whether a transaction failed only because a concurrent
// one got there first, so running it again will succeed.
func lostRace(err error) bool {
	if errors.Is(err, gorm.ErrDuplicatedKey) || errors.Is(err, errRaced) {
		return true
	}
	// Unique violation (when the driver error reached us untranslated),
	// serialization failure or deadlock: Postgres aborted this transaction
	// to let another one finish.
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "23505" || pgErr.Code == "40001" || pgErr.Code == "40P01")
}

func validate(r Request) error {
	switch {
	case r.OrderID == "":
		return failure.NewPermanent("invalid-request", errors.New("order id is empty"))
	case !utf8.ValidString(r.OrderID) || strings.ContainsRune(r.OrderID, 0):
		// Postgres text holds neither; JSON would turn invalid bytes into
		// U+FFFD and allocate under another id. Checked for every backend,
		// so that both accept the same ids.
		return failure.NewPermanent("invalid-request", fmt.Errorf("order id %q is not valid UTF-8 text", r.OrderID))
	case r.Quantity <= 0:
		return failure.NewPermanent("invalid-request", fmt.Errorf("quantity %d is not positive", r.Quantity))
	}
	return nil
}

// Reservation names an order and the reefer a chain reserved for it.
type Reservation = allocation.Reservation

// MarkAllocated moves a reserved order to allocated, if it still holds
// containerID; see MarkAllocatedBatch.
func (s *Store) MarkAllocated(ctx context.Context, orderID, containerID string) (bool, error) {
	won, err := s.MarkAllocatedBatch(ctx, []Reservation{{OrderID: orderID, ContainerID: containerID}})
	if err != nil {
		return false, err
	}
	return won[0], nil
}

// MarkAllocatedBatch moves each reserved order to allocated, in one
// statement, if it still holds the reefer named (compare-and-set): the
// inventory has just recorded that reefer for the order. won[i] is true
// when reservations[i]'s order is allocated with that reefer (already
// allocated counts: the mark is idempotent). It is false when another
// chain dead-lettered the order meanwhile: the reefer went back to the
// pool, while the inventory holds it for the order. Such a reefer, if
// still free, is quarantined (a second statement), so that the next order
// does not get an inventory 409 for it.
func (s *Store) MarkAllocatedBatch(ctx context.Context, reservations []Reservation) (won []bool, err error) {
	if len(reservations) == 0 {
		return nil, nil
	}
	now := s.now()
	values := make([]string, 0, len(reservations))
	args := make([]any, 0, 1+2*len(reservations))
	args = append(args, now)
	seen := make(map[Reservation]bool, len(reservations))
	for _, r := range reservations {
		if seen[r] {
			continue
		}
		seen[r] = true
		values = append(values, "(?, ?)")
		args = append(args, r.OrderID, r.ContainerID)
	}
	var marked []string
	err = s.db.WithContext(ctx).Raw(`UPDATE order_states SET state = 'allocated', version = version + 1, updated_at = ?
		WHERE state IN ('reserved', 'allocated') AND (order_id, container_id) IN (VALUES `+strings.Join(values, ", ")+`)
		RETURNING order_id`, args...).Scan(&marked).Error
	if err != nil {
		return nil, fmt.Errorf("mark %s allocated: %w", countOrders(len(values)), classify(err))
	}
	isMarked := make(map[string]bool, len(marked))
	for _, id := range marked {
		isMarked[id] = true
	}
	won = make([]bool, len(reservations))
	for i, r := range reservations {
		won[i] = isMarked[r.OrderID]
		if !won[i] {
			if err := s.holdForRelease(ctx, r); err != nil {
				return nil, fmt.Errorf("mark order %s allocated: %w", r.OrderID, classify(err))
			}
		}
	}
	return won, nil
}

// Allocation returns the reefer an order holds (reserved or allocated), if any.
func (s *Store) Allocation(ctx context.Context, orderID string) (containerID string, ok bool, err error) {
	o, ok, err := s.Order(ctx, orderID)
	if err != nil || !ok || o.ContainerID == "" {
		return "", false, err
	}
	return o.ContainerID, true, nil
}

// CountAllocations returns how many orders hold a reefer (reserved or
// allocated).
func (s *Store) CountAllocations(ctx context.Context) (int64, error) {
	var n int64
	if err := s.db.WithContext(ctx).Model(&orderRow{}).Where("container_id IS NOT NULL").Count(&n).Error; err != nil {
		return 0, fmt.Errorf("count allocations: %w", classify(err))
	}
	return n, nil
}

// Reefer returns one reefer of the fleet, or an error wrapping
// ErrReeferNotFound.
func (s *Store) Reefer(ctx context.Context, containerID string) (Reefer, error) {
	var rows []reeferRow
	if err := s.db.WithContext(ctx).Where("container_id = ?", containerID).Limit(1).Find(&rows).Error; err != nil {
		return Reefer{}, fmt.Errorf("read reefer %s: %w", containerID, classify(err))
	}
	if len(rows) == 0 {
		return Reefer{}, fmt.Errorf("read reefer %s: %w", containerID, ErrReeferNotFound)
	}
	return fromRow(rows[0]), nil
}
