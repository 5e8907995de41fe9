package reeferstore

import (
	"context"
	"errors"
	"fmt"

	"gorm.io/gorm"

	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/failure"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/allocation"
)

// An order's row in order_states is its one authoritative state (see
// allocation.State for the machine, docs/contract.md for why each
// transition is safe). Every transition is a compare-and-set that reads
// the newest committed row, not a snapshot, and changes the order and its
// reefer in one statement or one transaction:
//
//	reserve        (none|reopened) -> reserved      Allocate, AllocateBatch (allocate.go)
//	mark allocated reserved -> allocated            MarkAllocated, MarkAllocatedBatch (allocate.go)
//	claim          (none|reopened|reserved) -> dead-lettered, reefer pending release or quarantined   DeadLetter
//	reopen         dead-lettered -> reopened        Reopen (a redrive with a higher count, nothing pending release)
//	release        reefer pending release -> free   FinishRelease, after the inventory released it
//	                                                 (and released there once more later: recheck.go)
//
// So two chains of one order cannot both conclude: the first
// compare-and-set wins and the other sees the winner's state.

// holdForRelease handles a lost mark: the inventory has just recorded r's
// reefer for r's order, which another chain dead-lettered meanwhile (its
// claim left the reefer pending release, or a release already freed it).
// A free reefer is held for the order again, pending its release (see
// allocation.Releaser), unless the order holds another reefer (a redrive
// reserved one): then it is quarantined, as the inventory gives it to no
// one else until a person releases it there.
func (s *Store) holdForRelease(ctx context.Context, r Reservation) error {
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		// The order's row lock orders this against Reopen: either the
		// order is still dead-lettered here and Reopen then finds the
		// reefer pending release, or it is reopened and the reefer is
		// quarantined.
		var states []string
		if err := scan(tx.Raw(`SELECT state FROM order_states WHERE order_id = ?`+s.forUpdate(), r.OrderID), &states); err != nil {
			return err
		}
		if len(states) == 1 && states[0] == string(allocation.StateDeadLettered) {
			res := tx.Exec(`UPDATE reefers SET status = 'allocated', order_id = ?, release_pending = TRUE, updated_at = ?
				WHERE container_id = ? AND status = 'free'
					AND NOT EXISTS (SELECT 1 FROM reefers held WHERE held.order_id = ?)`,
				r.OrderID, s.now(), r.ContainerID, r.OrderID)
			if res.Error != nil || res.RowsAffected == 1 {
				return res.Error
			}
		}
		reason := fmt.Sprintf("the inventory recorded it for order %s, which was dead-lettered meanwhile", r.OrderID)
		return s.quarantine(tx, r.ContainerID, reason, "free")
	})
}

// TakeOverClaim moves the order's unwritten dead-letter claim from
// oldToken to token and owner (compare-and-set), and restarts its lease.
func (s *Store) TakeOverClaim(ctx context.Context, orderID, oldToken, token, owner string) (won bool, err error) {
	res := s.db.WithContext(ctx).Exec(`UPDATE order_states SET claim_token = ?, claim_owner = ?, version = version + 1, updated_at = ?
		WHERE order_id = ? AND state = 'dead-lettered' AND claim_token = ? AND NOT dead_letter_written`,
		token, owner, s.now(), orderID, oldToken)
	if res.Error != nil {
		return false, fmt.Errorf("take over the dead-letter claim of order %s: %w", orderID, classify(res.Error))
	}
	return res.RowsAffected == 1, nil
}

// QuarantinePending takes r's reefer out of the pool with reason, if it
// is still pending release for r's order (the inventory refused to
// release it), and records the refusal (refused_releases): the inventory
// may hold the reefer for the order, so the order cannot be reopened
// (Reopen sees the refusal) until a later release is accepted
// (RefusalLifted). quarantined is false when nothing changed.
func (s *Store) QuarantinePending(ctx context.Context, r Reservation, reason string) (quarantined bool, err error) {
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res := tx.Exec(`UPDATE reefers SET status = 'quarantined', order_id = NULL, quarantine_reason = ?,
				release_pending = FALSE, updated_at = ?
			WHERE container_id = ? AND order_id = ? AND release_pending`,
			reason, s.now(), r.ContainerID, r.OrderID)
		if res.Error != nil || res.RowsAffected != 1 {
			return res.Error
		}
		quarantined = true
		return tx.Exec(`INSERT INTO refused_releases (container_id, order_id, refused_ms) VALUES (?, ?, ?)
			ON CONFLICT (container_id, order_id) DO NOTHING`, r.ContainerID, r.OrderID, s.now().UnixMilli()).Error
	})
	if err != nil {
		return false, fmt.Errorf("quarantine reefer %s of order %s: %w", r.ContainerID, r.OrderID, classify(err))
	}
	return quarantined, nil
}

// RefusedReleases returns up to limit releases the inventory refused
// (QuarantinePending), oldest first; orderID "" means any order.
func (s *Store) RefusedReleases(ctx context.Context, orderID string, limit int) ([]Reservation, error) {
	var rows []struct {
		OrderID     string `gorm:"column:order_id"`
		ContainerID string `gorm:"column:container_id"`
	}
	q := `SELECT order_id, container_id FROM refused_releases WHERE (? = '' OR order_id = ?) ORDER BY refused_ms, container_id LIMIT ?`
	if err := scan(s.db.WithContext(ctx).Raw(q, orderID, orderID, limit), &rows); err != nil {
		return nil, fmt.Errorf("read refused releases: %w", classify(err))
	}
	out := make([]Reservation, len(rows))
	for i, r := range rows {
		out[i] = Reservation{OrderID: r.OrderID, ContainerID: r.ContainerID}
	}
	return out, nil
}

// RefusalLifted records that the inventory has now released r's reefer
// for r's order: the refusal is forgotten, and the reefer, if still
// quarantined, goes back to the pool. freed reports the latter.
func (s *Store) RefusalLifted(ctx context.Context, r Reservation) (freed bool, err error) {
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res := tx.Exec(`DELETE FROM refused_releases WHERE container_id = ? AND order_id = ?`, r.ContainerID, r.OrderID)
		if res.Error != nil || res.RowsAffected != 1 {
			return res.Error
		}
		res = tx.Exec(`UPDATE reefers SET status = 'free', quarantine_reason = NULL, updated_at = ?
			WHERE container_id = ? AND status = 'quarantined'
				AND NOT EXISTS (SELECT 1 FROM refused_releases WHERE container_id = ?)`,
			s.now(), r.ContainerID, r.ContainerID)
		freed = res.RowsAffected == 1
		return res.Error
	})
	if err != nil {
		return false, fmt.Errorf("lift the refused release of reefer %s from order %s: %w", r.ContainerID, r.OrderID, classify(err))
	}
	return freed, nil
}

// forUpdate is the row lock clause of a SELECT in a transaction: SQLite's
// immediate transaction already holds the database's write lock.
func (s *Store) forUpdate() string {
	if s.dialect == dialectPostgres {
		return " FOR UPDATE"
	}
	return ""
}

// DeadLetter claims the order's dead letter for claim (compare-and-set in
// one transaction, with its reefer):
//
//   - a new, reopened or reserved order becomes dead-lettered, unless the
//     claim's generation is older than the order's (a chain from before
//     the last redrive: ClaimStale); so does a dead-lettered order of an
//     older generation. Its reefer, if it held one, stays held pending
//     release (Released: the inventory may hold it for the order; see
//     allocation.Releaser), or is quarantined when it is claim.Quarantine;
//   - an order dead-lettered by the same token stays so (ClaimGranted
//     again, Repeated, with the first claim's failure, time and Written
//     mark): the record is delivered again, after a crash or a
//     rebalance, and writes its dead letter unless it is on the topic;
//   - an order dead-lettered by another token: ClaimStale;
//   - an allocated order: ClaimAllocated with its reefer.
func (s *Store) DeadLetter(ctx context.Context, orderID string, claim allocation.Claim) (allocation.ClaimResult, error) {
	var res allocation.ClaimResult
	var err error
	for attempt := 1; ; attempt++ {
		err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			var txErr error
			res, txErr = s.deadLetter(tx, orderID, claim)
			return txErr
		})
		if err == nil || !lostRace(err) || ctx.Err() != nil {
			break
		}
		if attempt == conflictAttempts {
			return res, fmt.Errorf("dead-letter order %s: %w", orderID, failure.NewTransient("database-conflict", err))
		}
	}
	if err != nil {
		return res, fmt.Errorf("dead-letter order %s: %w", orderID, classify(err))
	}
	return res, nil
}

func (s *Store) deadLetter(tx *gorm.DB, orderID string, claim allocation.Claim) (allocation.ClaimResult, error) {
	var rows []orderRow
	if err := scan(tx.Raw(`SELECT * FROM order_states WHERE order_id = ?`+s.forUpdate(), orderID), &rows); err != nil {
		return allocation.ClaimResult{}, err
	}
	now := s.now()
	granted := allocation.ClaimResult{Outcome: allocation.ClaimGranted, Claim: claim}
	if len(rows) == 0 {
		// A concurrent insert of the same order fails this one on the key;
		// DeadLetter runs the transaction again and finds its row.
		err := tx.Exec(`INSERT INTO order_states (order_id, state, generation, claim_token, claim_owner, error_class, error_reason, error_message, version, updated_at)
			VALUES (?, 'dead-lettered', ?, ?, ?, ?, ?, ?, 1, ?)`,
			orderID, claim.Generation, claim.Token, claim.Owner, string(claim.ErrorClass), claim.ErrorReason, claim.ErrorMessage, now).Error
		return granted, err
	}
	o := fromOrderRow(rows[0])
	switch {
	case o.State == allocation.StateAllocated:
		return allocation.ClaimResult{Outcome: allocation.ClaimAllocated, ContainerID: o.ContainerID}, nil
	case o.State == allocation.StateDeadLettered && o.Claim.Token == claim.Token:
		return allocation.ClaimResult{Outcome: allocation.ClaimGranted, Claim: o.Claim, Repeated: true}, nil
	case claim.Generation < o.Generation, o.State == allocation.StateDeadLettered && claim.Generation == o.Generation:
		return allocation.ClaimResult{Outcome: allocation.ClaimStale}, nil
	}
	// Granted. A dead-lettered order of an older generation is claimed
	// again too: a redrive's chain that could not reopen it (its earlier
	// reefer was still pending release) and ran out of attempts; the
	// dead letter it writes replaces the one the redrive resolved.
	res := tx.Exec(`UPDATE order_states SET state = 'dead-lettered', container_id = NULL, quantity = NULL,
			dead_letter_written = FALSE, generation = ?, claim_token = ?, claim_owner = ?, error_class = ?, error_reason = ?, error_message = ?,
			version = version + 1, updated_at = ?
		WHERE order_id = ? AND version = ?`,
		claim.Generation, claim.Token, claim.Owner, string(claim.ErrorClass), claim.ErrorReason, claim.ErrorMessage, now,
		orderID, o.Version)
	if res.Error != nil {
		return allocation.ClaimResult{}, res.Error
	}
	if res.RowsAffected != 1 {
		return allocation.ClaimResult{}, fmt.Errorf("order %s: %w", orderID, errRaced)
	}
	if o.ContainerID == "" {
		return granted, nil
	}
	if o.ContainerID == claim.Quarantine {
		reason := fmt.Sprintf("the inventory refused it for order %s (409: another order holds it there): %s",
			orderID, claim.ErrorMessage)
		granted.Quarantined = o.ContainerID
		return granted, s.quarantine(tx, o.ContainerID, reason, "allocated")
	}
	// The reefer stays held by the order, pending its release: the
	// inventory may have recorded it (see allocation.Releaser).
	granted.Released = o.ContainerID
	return granted, tx.Exec(`UPDATE reefers SET release_pending = TRUE, updated_at = ? WHERE container_id = ?`,
		now, o.ContainerID).Error
}

// PendingReleases returns up to limit reefers held by an order that does
// not hold them any more (dead-lettered, or reserved with another
// reefer): each waits for allocation.Releaser to release it in the
// inventory and then FinishRelease. orderID "" means any order.
func (s *Store) PendingReleases(ctx context.Context, orderID string, limit int) ([]Reservation, error) {
	var rows []struct {
		OrderID     string `gorm:"column:order_id"`
		ContainerID string `gorm:"column:container_id"`
	}
	q := s.db.WithContext(ctx).Table("reefers").Select("order_id, container_id").Where("release_pending")
	if orderID != "" {
		q = q.Where("order_id = ?", orderID)
	}
	err := scan(q.Order("updated_at, container_id").Limit(limit), &rows)
	if err != nil {
		return nil, fmt.Errorf("read reefers pending release: %w", classify(err))
	}
	out := make([]Reservation, len(rows))
	for i, r := range rows {
		out[i] = Reservation{OrderID: r.OrderID, ContainerID: r.ContainerID}
	}
	return out, nil
}

// ReleaseWith releases r's reefer if it is pending release for r's
// order: release (the inventory's release) runs while this call holds
// the reefer's row lock, and only on its success does the reefer go back
// to the pool, in the same transaction. done is false when the reefer is
// not pending release, or another process is releasing it right now
// (SKIP LOCKED): two releases of one reefer never run at once. Were they
// to, one could finish and free the reefer, the order (redriven) take it
// again and the inventory record it, and then the other's release land
// and erase that record: an allocated order the inventory knows nothing
// of. SQLite has no row locks (the demo's store): the release runs
// outside any transaction there, which leaves that race open.
func (s *Store) ReleaseWith(ctx context.Context, r Reservation, release func(context.Context) error) (done bool, err error) {
	if s.dialect != dialectPostgres {
		var held []string
		if err := scan(s.db.WithContext(ctx).Raw(`SELECT container_id FROM reefers WHERE container_id = ? AND order_id = ? AND release_pending`,
			r.ContainerID, r.OrderID), &held); err != nil {
			return false, fmt.Errorf("release reefer %s of order %s: %w", r.ContainerID, r.OrderID, classify(err))
		}
		if len(held) == 0 {
			return false, nil
		}
		if err := release(ctx); err != nil {
			return false, err
		}
		return s.FinishRelease(ctx, r)
	}
	var releaseErr error
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var held []string
		if err := scan(tx.Raw(`SELECT container_id FROM reefers WHERE container_id = ? AND order_id = ? AND release_pending
			FOR UPDATE SKIP LOCKED`, r.ContainerID, r.OrderID), &held); err != nil {
			return err
		}
		if len(held) == 0 {
			return nil
		}
		if releaseErr = release(ctx); releaseErr != nil {
			return releaseErr
		}
		var ferr error
		done, ferr = s.free(tx, r)
		return ferr
	})
	if releaseErr != nil {
		return false, releaseErr
	}
	if err != nil {
		return false, fmt.Errorf("release reefer %s of order %s: %w", r.ContainerID, r.OrderID, classify(err))
	}
	return done, nil
}

// FinishRelease gives r's reefer back to the pool once the inventory has
// released it, if it is still pending release for r's order (compare-
// and-set: a reefer the order holds again, reserved, stays). freed is
// false when nothing changed.
func (s *Store) FinishRelease(ctx context.Context, r Reservation) (freed bool, err error) {
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var ferr error
		freed, ferr = s.free(tx, r)
		return ferr
	})
	if err != nil {
		return false, fmt.Errorf("free reefer %s of order %s: %w", r.ContainerID, r.OrderID, classify(err))
	}
	return freed, nil
}

// free gives r's reefer back to the pool if it is pending release for r's
// order, and schedules the release's recheck (see DueRechecks) in the
// same transaction.
func (s *Store) free(tx *gorm.DB, r Reservation) (freed bool, err error) {
	now := s.now()
	res := tx.Exec(`UPDATE reefers SET status = 'free', order_id = NULL, release_pending = FALSE, updated_at = ?
		WHERE container_id = ? AND order_id = ? AND release_pending`,
		now, r.ContainerID, r.OrderID)
	if res.Error != nil || res.RowsAffected != 1 {
		return false, res.Error
	}
	err = tx.Exec(`INSERT INTO release_rechecks (container_id, order_id, released_ms) VALUES (?, ?, ?)
		ON CONFLICT (container_id, order_id) DO UPDATE SET released_ms = excluded.released_ms`,
		r.ContainerID, r.OrderID, now.UnixMilli()).Error
	return err == nil, err
}

// MarkDeadLetterWritten records that the dead letter the order's claim
// of token asked for is on the dead-letter topic (allocation.Claim.Written).
// It changes nothing when the order is not dead-lettered by token: a
// redrive reopened it meanwhile, and a later claim writes its own.
func (s *Store) MarkDeadLetterWritten(ctx context.Context, orderID, token string) error {
	err := s.db.WithContext(ctx).Exec(`UPDATE order_states SET dead_letter_written = TRUE
		WHERE order_id = ? AND state = 'dead-lettered' AND claim_token = ? AND NOT dead_letter_written`,
		orderID, token).Error
	if err != nil {
		return fmt.Errorf("mark the dead letter of order %s written: %w", orderID, classify(err))
	}
	return nil
}

// quarantine takes a reefer in status from out of the pool.
func (s *Store) quarantine(db *gorm.DB, containerID, reason, from string) error {
	return db.Exec(`UPDATE reefers SET status = 'quarantined', order_id = NULL, quarantine_reason = ?, release_pending = FALSE, updated_at = ?
		WHERE container_id = ? AND status = ?`, reason, s.now(), containerID, from).Error
}

// Reopen moves a dead-lettered order to reopened when generation (the
// x-dlq-redrive-count of a redriven record) is above the order's: the
// redrive's chain may then reserve a reefer and conclude the order again.
// A lower or equal generation changes nothing (a stale or duplicate chain
// of a redrive already run). reopened reports whether this call reopened
// it. While the order still holds the reefer of its dead-lettered attempt
// (pending its inventory release) the error wraps
// allocation.ErrReleasePending: reopened then, it would reserve a second
// reefer while the inventory may hold the first for it.
func (s *Store) Reopen(ctx context.Context, orderID string, generation int) (reopened bool, err error) {
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		// The order's row lock orders this against holdForRelease.
		var rows []orderRow
		if err := scan(tx.Raw(`SELECT * FROM order_states WHERE order_id = ?`+s.forUpdate(), orderID), &rows); err != nil {
			return err
		}
		if len(rows) == 0 || rows[0].State != string(allocation.StateDeadLettered) || rows[0].Generation >= generation {
			return nil
		}
		var held []string
		if err := scan(tx.Raw(`SELECT container_id FROM reefers WHERE order_id = ?`, orderID), &held); err != nil {
			return err
		}
		if len(held) > 0 {
			return fmt.Errorf("reefer %s: %w", held[0], allocation.ErrReleasePending)
		}
		// A reefer whose release the inventory refused may be held there
		// for the order: no second one until it is released.
		if err := scan(tx.Raw(`SELECT container_id FROM refused_releases WHERE order_id = ?`, orderID), &held); err != nil {
			return err
		}
		if len(held) > 0 {
			return fmt.Errorf("reefer %s, whose release the inventory refused: %w", held[0], allocation.ErrReleasePending)
		}
		res := tx.Exec(`UPDATE order_states SET state = 'reopened', generation = ?,
				dead_letter_written = FALSE, claim_token = NULL, claim_owner = NULL, error_class = NULL, error_reason = NULL, error_message = NULL,
				version = version + 1, updated_at = ?
			WHERE order_id = ? AND version = ?`,
			generation, s.now(), orderID, rows[0].Version)
		reopened = res.RowsAffected == 1
		return res.Error
	})
	if errors.Is(err, allocation.ErrReleasePending) {
		return false, fmt.Errorf("reopen order %s: %w", orderID, err)
	}
	if err != nil {
		return false, fmt.Errorf("reopen order %s: %w", orderID, classify(err))
	}
	return reopened, nil
}

// Order returns the order's row; ok is false when the order has none
// (it was never reserved nor dead-lettered).
func (s *Store) Order(ctx context.Context, orderID string) (o allocation.Order, ok bool, err error) {
	var rows []orderRow
	if err := s.db.WithContext(ctx).Where("order_id = ?", orderID).Limit(1).Find(&rows).Error; err != nil {
		return allocation.Order{}, false, fmt.Errorf("read order %s: %w", orderID, classify(err))
	}
	if len(rows) == 0 {
		return allocation.Order{}, false, nil
	}
	return fromOrderRow(rows[0]), true, nil
}

// Quarantined returns the reefers out of the pool, by container id.
func (s *Store) Quarantined(ctx context.Context) ([]Reefer, error) {
	var rows []reeferRow
	if err := s.db.WithContext(ctx).Where("status = ?", string(StatusQuarantined)).Order("container_id").Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("read quarantined reefers: %w", classify(err))
	}
	out := make([]Reefer, len(rows))
	for i, r := range rows {
		out[i] = fromRow(r)
	}
	return out, nil
}

// HeldByUnallocated returns the reefers held by orders that do not hold
// them (neither reserved nor allocated with them): the reefers pending
// release. Once the inventory answers and the Releaser swept, none; the
// demo and the tests read it to show so.
func (s *Store) HeldByUnallocated(ctx context.Context) ([]string, error) {
	var ids []string
	err := scan(s.db.WithContext(ctx).Raw(`SELECT r.container_id FROM reefers r
		LEFT JOIN order_states o ON o.order_id = r.order_id
		WHERE r.status = 'allocated' AND (o.state IS NULL OR o.state NOT IN ('reserved', 'allocated') OR o.container_id <> r.container_id)
		ORDER BY r.container_id`), &ids)
	if err != nil {
		return nil, fmt.Errorf("read reefers held by unallocated orders: %w", classify(err))
	}
	return ids, nil
}

func countOrders(n int) string {
	if n == 1 {
		return "1 order"
	}
	return fmt.Sprintf("%d orders", n)
}
