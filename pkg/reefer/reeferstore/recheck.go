package reeferstore

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// A release can be overtaken by the allocation it undoes. The inventory
// call of one chain of an order is in flight when another chain
// dead-letters the order and releases its reefer; the call lands after
// the release, and the process that made it dies before it can record
// the answer (or its client timed out while the inventory was still
// doing it). The inventory then holds the reefer for an order that holds
// nothing, and the database has given the reefer back to the pool.
//
// So every release (free) leaves a row in release_rechecks, and the
// Releaser releases the pair in the inventory once more when the row is
// old enough that no call made before the release can still land:
// RELEASE_RECHECK_AFTER, many times the inventory timeout.

// DueRechecks returns up to limit releases done at or before releasedBy
// whose recheck is due, oldest first.
func (s *Store) DueRechecks(ctx context.Context, releasedBy time.Time, limit int) ([]Reservation, error) {
	var rows []struct {
		OrderID     string `gorm:"column:order_id"`
		ContainerID string `gorm:"column:container_id"`
	}
	err := scan(s.db.WithContext(ctx).Raw(`SELECT order_id, container_id FROM release_rechecks
		WHERE released_ms <= ? ORDER BY released_ms, container_id LIMIT ?`, releasedBy.UnixMilli(), limit), &rows)
	if err != nil {
		return nil, fmt.Errorf("read releases due for a recheck: %w", classify(err))
	}
	out := make([]Reservation, len(rows))
	for i, r := range rows {
		out[i] = Reservation{OrderID: r.OrderID, ContainerID: r.ContainerID}
	}
	return out, nil
}

// CountRechecks returns how many releases wait for their recheck.
func (s *Store) CountRechecks(ctx context.Context) (int64, error) {
	var n []int64
	if err := scan(s.db.WithContext(ctx).Raw(`SELECT COUNT(*) FROM release_rechecks`), &n); err != nil {
		return 0, fmt.Errorf("count releases waiting for a recheck: %w", classify(err))
	}
	return n[0], nil
}

// RecheckWith runs release (the inventory's release of r's reefer for r's
// order) unless r's order holds that reefer again in the database, and
// then forgets the recheck. On Postgres release runs under the order's
// row lock, which every reservation for the order takes too: the order
// cannot be given the reefer again, and the inventory record it, while
// this release is on its way (the release would then erase a true
// record). An order locked right now is left for the next sweep (done
// false). SQLite has no row locks (the demo's store): the release runs
// outside any transaction there, which leaves that race open.
//
// A failed release keeps the recheck for the next sweep; the caller
// decides which failures mean "nothing to release" and then calls
// DropRecheck.
func (s *Store) RecheckWith(ctx context.Context, r Reservation, release func(context.Context) error) (done bool, err error) {
	if s.dialect != dialectPostgres {
		held, err := s.holds(s.db.WithContext(ctx), r)
		if err != nil {
			return false, fmt.Errorf("recheck the release of reefer %s from order %s: %w", r.ContainerID, r.OrderID, classify(err))
		}
		if !held {
			if err := release(ctx); err != nil {
				return false, err
			}
		}
		return true, s.DropRecheck(ctx, r)
	}
	var releaseErr error
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var locked []string
		if err := scan(tx.Raw(`SELECT state FROM order_states WHERE order_id = ? FOR UPDATE SKIP LOCKED`, r.OrderID), &locked); err != nil {
			return err
		}
		if len(locked) == 0 {
			// Locked by a reservation (or a claim) of the order: busy
			// now, next sweep. A released pair's order always has a row
			// (rows are never deleted); were it missing, the release
			// runs unlocked.
			var any []string
			if err := scan(tx.Raw(`SELECT order_id FROM order_states WHERE order_id = ?`, r.OrderID), &any); err != nil || len(any) > 0 {
				return err
			}
		}
		held, err := s.holds(tx, r)
		if err != nil {
			return err
		}
		if !held {
			if releaseErr = release(ctx); releaseErr != nil {
				return releaseErr
			}
		}
		done = true
		return dropRecheck(tx, r)
	})
	if releaseErr != nil {
		return false, releaseErr
	}
	if err != nil {
		return false, fmt.Errorf("recheck the release of reefer %s from order %s: %w", r.ContainerID, r.OrderID, classify(err))
	}
	return done, nil
}

// holds reports whether r's order holds r's reefer in the database
// (reserved, allocated or pending another release, which has its own
// recheck).
func (s *Store) holds(db *gorm.DB, r Reservation) (bool, error) {
	var ids []string
	err := scan(db.Raw(`SELECT container_id FROM reefers WHERE container_id = ? AND order_id = ?`, r.ContainerID, r.OrderID), &ids)
	return len(ids) > 0, err
}

// RefuseRecheck turns r's recheck into a refused release (see
// QuarantinePending), in one transaction: the inventory refused to
// release the pair once more. The reefer itself stays as it is (free,
// or another order's): the refusal only keeps r's order from being
// reopened until the inventory releases it (RefusalLifted).
func (s *Store) RefuseRecheck(ctx context.Context, r Reservation) error {
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Exec(`INSERT INTO refused_releases (container_id, order_id, refused_ms) VALUES (?, ?, ?)
			ON CONFLICT (container_id, order_id) DO NOTHING`, r.ContainerID, r.OrderID, s.now().UnixMilli()).Error; err != nil {
			return err
		}
		return dropRecheck(tx, r)
	})
	if err != nil {
		return fmt.Errorf("record the refused recheck of reefer %s from order %s: %w", r.ContainerID, r.OrderID, classify(err))
	}
	return nil
}

// DropRecheck forgets r's recheck.
func (s *Store) DropRecheck(ctx context.Context, r Reservation) error {
	if err := dropRecheck(s.db.WithContext(ctx), r); err != nil {
		return fmt.Errorf("forget the recheck of reefer %s from order %s: %w", r.ContainerID, r.OrderID, classify(err))
	}
	return nil
}

func dropRecheck(db *gorm.DB, r Reservation) error {
	return db.Exec(`DELETE FROM release_rechecks WHERE container_id = ? AND order_id = ?`, r.ContainerID, r.OrderID).Error
}
