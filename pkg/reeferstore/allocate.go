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

	"github.com/reeferdlq/reefer-dlq/pkg/allocation"
	"github.com/reeferdlq/reefer-dlq/pkg/failure"
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

// allocateOnePostgres allocates one order in one statement, which
// Postgres runs atomically: no explicit transaction, one round trip, and a
// plan Postgres makes once per connection and reuses.
//
//   - existing: the order's allocation, if it has one (idempotency);
//   - picked: otherwise the smallest free reefer that fits. FOR UPDATE SKIP
//     LOCKED makes concurrent statements skip a candidate another one has
//     just locked and take the next, instead of queueing behind it:
//     allocations run in parallel and never share a reefer;
//   - recorded: insert the allocation. The order_id key comes before the
//     reefer's order_id in every allocation statement, so two statements
//     racing for the same order wait for each other in one direction and
//     cannot deadlock; the loser fails on the primary key;
//   - reserved: mark the reefer allocated. A reefer another order holds
//     cannot be taken over: its allocation row exists, and container_id is
//     unique among allocations.
//
// It returns one row (the reefer) or none when no reefer fits. All parts
// see the same snapshot, so two statements racing for the same order both
// find no allocation; the order_id key makes the second one fail, and its
// re-run finds the first.
const allocateOnePostgres = `WITH existing AS (
	SELECT container_id FROM allocations WHERE order_id = @order
), picked AS (
	SELECT container_id FROM reefers
	WHERE status = 'free' AND capacity >= @quantity AND NOT EXISTS (SELECT 1 FROM existing)
	ORDER BY capacity, container_id
	LIMIT 1
	FOR UPDATE SKIP LOCKED
), recorded AS (
	INSERT INTO allocations (order_id, container_id, quantity, allocated_at)
	SELECT @order, container_id, @quantity, @now FROM picked
	RETURNING container_id
), reserved AS (
	UPDATE reefers SET status = 'allocated', order_id = @order, updated_at = @now
	WHERE container_id IN (SELECT container_id FROM recorded)
)
SELECT container_id FROM existing
UNION ALL
SELECT container_id FROM recorded`

// allocateManyPostgres is allocateOnePostgres for a batch of orders, in
// one statement too: one round trip however many orders. Its parameters
// are the orders as a JSON array, [{"order_id": "O-1", "quantity": 5}, ...]
// without duplicate ids, and the time. JSON rather than two arrays: an
// array's length is visible to the planner, which then plans each batch
// anew; with a JSON parameter Postgres soon settles on one plan and reuses
// it, which halves the statement's cost.
//
//   - existing: the orders that already have an allocation keep it;
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
//   - recorded: insert the allocations, sorted by order id: statements
//     racing for several of the same orders meet on the first one and
//     wait in one direction only, as above;
//   - reserved: mark the reefers allocated, as above.
//
// It returns one row per order that holds a reefer; an order without a
// row found none that fits.
const allocateManyPostgres = `WITH RECURSIVE request AS (
	SELECT order_id, quantity FROM jsonb_to_recordset(CAST(@requests AS jsonb)) AS r (order_id text, quantity bigint)
), existing AS (
	SELECT order_id, container_id FROM (
		SELECT order_id, (SELECT container_id FROM allocations a WHERE a.order_id = request.order_id) AS container_id
		FROM request
	) held
	WHERE container_id IS NOT NULL
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
	INSERT INTO allocations (order_id, container_id, quantity, allocated_at)
	SELECT order_id, container_id, quantity, @now FROM picked
	WHERE container_id IS NOT NULL
	ORDER BY order_id
	RETURNING order_id, container_id
), reserved AS (
	UPDATE reefers SET status = 'allocated', order_id = recorded.order_id, updated_at = @now
	FROM recorded
	WHERE reefers.container_id = recorded.container_id
)
SELECT order_id, container_id FROM existing
UNION ALL
SELECT order_id, container_id FROM recorded`

// pickSQLite reserves the smallest free reefer that fits. SQLite has no
// row locks and no data-modifying CTEs; allocation runs as three
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

// Allocate reserves a reefer for the order and returns its id, atomically
// (one statement on Postgres, one transaction on SQLite): if the order
// already has an allocation it is returned unchanged (idempotent);
// otherwise the smallest free reefer with capacity >= quantity is marked
// allocated and the allocation recorded.
// With no such reefer the error wraps allocation.ErrNoCapacity. Other
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
	var held map[string]string // order id -> container id
	var err error
	if s.dialect == dialectPostgres {
		held, err = allocateOnPostgres(db, reqs, now)
	} else {
		err = db.Transaction(func(tx *gorm.DB) error {
			var txErr error
			held, txErr = allocateOnSQLite(tx, reqs, now) // from scratch on a re-run
			return txErr
		})
	}
	if err != nil {
		return nil, err
	}
	got := make([]BatchResult, len(reqs))
	for i, r := range reqs {
		got[i] = BatchResult{OrderID: r.OrderID, ContainerID: held[r.OrderID]}
		if got[i].ContainerID == "" {
			got[i].Err = fmt.Errorf("quantity %d: %w", r.Quantity, allocation.ErrNoCapacity)
		}
	}
	return got, nil
}

// allocateOnPostgres runs allocateOnePostgres or allocateManyPostgres and
// returns the reefer each order holds; orders that got none are absent.
func allocateOnPostgres(db *gorm.DB, reqs []Request, now time.Time) (map[string]string, error) {
	if len(reqs) == 1 {
		var ids []string
		args := map[string]any{"order": reqs[0].OrderID, "quantity": reqs[0].Quantity, "now": now}
		if err := db.Raw(allocateOnePostgres, args).Scan(&ids).Error; err != nil {
			return nil, err
		}
		if len(ids) == 0 {
			return nil, nil
		}
		return map[string]string{reqs[0].OrderID: ids[0]}, nil
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
	var rows []struct {
		OrderID     string
		ContainerID string
	}
	args := map[string]any{"requests": string(requests), "now": now}
	if err := db.Raw(allocateManyPostgres, args).Scan(&rows).Error; err != nil {
		return nil, err
	}
	held := make(map[string]string, len(rows))
	for _, row := range rows {
		held[row.OrderID] = row.ContainerID
	}
	return held, nil
}

// allocateOnSQLite allocates the orders one after the other inside tx and
// returns the reefer each order holds; orders that got none are absent.
func allocateOnSQLite(tx *gorm.DB, reqs []Request, now time.Time) (map[string]string, error) {
	held := make(map[string]string, len(reqs))
	for _, r := range reqs {
		var existing []allocationRow
		if err := tx.Where("order_id = ?", r.OrderID).Limit(1).Find(&existing).Error; err != nil {
			return nil, err
		}
		if len(existing) > 0 {
			held[r.OrderID] = existing[0].ContainerID
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
		row := allocationRow{OrderID: r.OrderID, ContainerID: ids[0], Quantity: r.Quantity, AllocatedAt: now}
		if err := tx.Create(&row).Error; err != nil {
			return nil, err
		}
		held[r.OrderID] = ids[0]
	}
	return held, nil
}

// lostRace reports whether a transaction failed only because a concurrent
// one got there first, so running it again will succeed.
func lostRace(err error) bool {
	if errors.Is(err, gorm.ErrDuplicatedKey) {
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

// Allocation returns the reefer allocated to orderID, if any.
func (s *Store) Allocation(ctx context.Context, orderID string) (containerID string, ok bool, err error) {
	var rows []allocationRow
	if err := s.db.WithContext(ctx).Where("order_id = ?", orderID).Limit(1).Find(&rows).Error; err != nil {
		return "", false, fmt.Errorf("read allocation of order %s: %w", orderID, classify(err))
	}
	if len(rows) == 0 {
		return "", false, nil
	}
	return rows[0].ContainerID, true, nil
}

// CountAllocations returns how many orders hold a reefer.
func (s *Store) CountAllocations(ctx context.Context) (int64, error) {
	var n int64
	if err := s.db.WithContext(ctx).Model(&allocationRow{}).Count(&n).Error; err != nil {
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
