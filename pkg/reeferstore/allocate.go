package reeferstore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

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

// allocatePostgres allocates one order in one statement, which Postgres
// runs atomically: no explicit transaction, one round trip.
//
//   - existing: the order's allocation, if it has one (idempotency);
//   - picked: otherwise the smallest free reefer that fits. FOR UPDATE SKIP
//     LOCKED makes concurrent statements skip a candidate another one has
//     just locked and take the next, instead of queueing behind it:
//     allocations run in parallel and never share a reefer;
//   - reserved: mark it allocated ("status = 'free'" again, as a second
//     line of defence: a reefer taken meanwhile is never stolen);
//   - recorded: insert the allocation.
//
// It returns one row (the reefer, and whether it was allocated before) or
// none when no reefer fits. All parts see the same snapshot, so two
// statements racing for the same order both find no allocation; the
// order_id keys make the second one fail, and its re-run finds the first.
const allocatePostgres = `WITH existing AS (
	SELECT container_id FROM allocations WHERE order_id = @order
), picked AS (
	SELECT container_id FROM reefers
	WHERE status = 'free' AND capacity >= @quantity AND NOT EXISTS (SELECT 1 FROM existing)
	ORDER BY capacity, container_id
	LIMIT 1
	FOR UPDATE SKIP LOCKED
), reserved AS (
	UPDATE reefers SET status = 'allocated', order_id = @order, updated_at = @now
	WHERE container_id IN (SELECT container_id FROM picked) AND status = 'free'
	RETURNING container_id
), recorded AS (
	INSERT INTO allocations (order_id, container_id, quantity, allocated_at)
	SELECT @order, container_id, @quantity, @now FROM reserved
	RETURNING container_id
)
SELECT container_id FROM existing
UNION ALL
SELECT container_id FROM recorded`

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
// (one statement on Postgres, one transaction on SQLite): if the order already has an allocation it is returned
// unchanged (idempotent); otherwise the smallest free reefer with
// capacity >= quantity is marked allocated and the allocation recorded.
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

// AllocateBatch allocates reefers for many orders in one transaction,
// which saves a commit (a disk flush on Postgres) and a few round trips
// per order. Each request gets the answer Allocate would give it; the
// results are in the order of reqs. A request repeated in the batch gets
// the same reefer (the first occurrence's quantity is used). The returned
// error is for the batch as a whole (database unreachable) and is
// classified; per-order outcomes are in BatchResult.Err. A batch-level
// error fails every order of the batch; to find which order a permanent
// error belongs to, retry them one by one with Allocate.
//
// Batching pays off with few concurrent writers. Keep batches small (tens
// of orders): a transaction holds its reefers' row locks until it commits,
// and on Postgres every concurrent allocation has to skip those rows.
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

// allocateAll allocates distinct, valid requests sorted by order id.
// Several requests share one transaction; a single request on Postgres
// needs none, its statement being atomic.
func (s *Store) allocateAll(ctx context.Context, reqs []Request) ([]BatchResult, error) {
	now := s.now()
	var got []BatchResult
	run := func(tx *gorm.DB) error {
		got = make([]BatchResult, 0, len(reqs)) // from scratch on a re-run
		for _, r := range reqs {
			id, err := s.allocateOne(tx, r, now)
			if err != nil {
				return err
			}
			res := BatchResult{OrderID: r.OrderID, ContainerID: id}
			if id == "" {
				res.Err = fmt.Errorf("quantity %d: %w", r.Quantity, allocation.ErrNoCapacity)
			}
			got = append(got, res)
		}
		return nil
	}
	db := s.db.WithContext(ctx)
	var err error
	if s.dialect == dialectPostgres && len(reqs) == 1 {
		err = run(db)
	} else {
		err = db.Transaction(run)
	}
	if err != nil {
		return nil, err
	}
	return got, nil
}

// allocateOne returns the reefer allocated to r's order, allocating one if
// needed, or "" when none fits.
func (s *Store) allocateOne(tx *gorm.DB, r Request, now time.Time) (string, error) {
	args := map[string]any{"order": r.OrderID, "quantity": r.Quantity, "now": now}
	var ids []string
	if s.dialect == dialectPostgres {
		if err := tx.Raw(allocatePostgres, args).Scan(&ids).Error; err != nil {
			return "", err
		}
		if len(ids) == 0 {
			return "", nil
		}
		return ids[0], nil
	}

	var existing []allocationRow
	if err := tx.Where("order_id = ?", r.OrderID).Limit(1).Find(&existing).Error; err != nil {
		return "", err
	}
	if len(existing) > 0 {
		return existing[0].ContainerID, nil
	}
	if err := tx.Raw(pickSQLite, args).Scan(&ids).Error; err != nil {
		return "", err
	}
	if len(ids) == 0 {
		return "", nil
	}
	row := allocationRow{OrderID: r.OrderID, ContainerID: ids[0], Quantity: r.Quantity, AllocatedAt: now}
	if err := tx.Create(&row).Error; err != nil {
		return "", err
	}
	return ids[0], nil
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
