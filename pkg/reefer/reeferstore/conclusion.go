package reeferstore

import (
	"context"
	"fmt"
	"strings"

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
//	mark allocated reserved -> allocated            MarkAllocatedBatch
//	claim          (none|reopened|reserved) -> dead-lettered, reefer released or quarantined   DeadLetter
//	reopen         dead-lettered -> reopened        Reopen (a redrive with a higher count)
//
// So two chains of one order cannot both conclude: the first
// compare-and-set wins and the other sees the winner's state.

// Reservation names an order and the reefer a chain reserved for it.
type Reservation struct {
	OrderID     string
	ContainerID string
}

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
			reason := fmt.Sprintf("the inventory recorded it for order %s, which was dead-lettered meanwhile", r.OrderID)
			if err := s.quarantine(s.db.WithContext(ctx), r.ContainerID, reason, "free"); err != nil {
				return nil, fmt.Errorf("mark order %s allocated: %w", r.OrderID, classify(err))
			}
		}
	}
	return won, nil
}

// DeadLetter claims the order's dead letter for claim (compare-and-set in
// one transaction, with the release of its reefer):
//
//   - a new, reopened or reserved order becomes dead-lettered, unless the
//     claim's generation is older than the order's (a chain from before
//     the last redrive: ClaimStale). Its reefer, if it held one, goes back
//     to the pool, or is quarantined when it is claim.Quarantine;
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
	lock := ""
	if s.dialect == dialectPostgres {
		// SQLite's immediate transaction already holds the write lock.
		lock = " FOR UPDATE"
	}
	var rows []orderRow
	if err := tx.Raw(`SELECT * FROM order_states WHERE order_id = ?`+lock, orderID).Scan(&rows).Error; err != nil {
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
	case o.State == allocation.StateDeadLettered, claim.Generation < o.Generation:
		return allocation.ClaimResult{Outcome: allocation.ClaimStale}, nil
	}
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
	granted.Released = o.ContainerID
	return granted, tx.Exec(`UPDATE reefers SET status = 'free', order_id = NULL, updated_at = ? WHERE container_id = ?`,
		now, o.ContainerID).Error
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
	return db.Exec(`UPDATE reefers SET status = 'quarantined', order_id = NULL, quarantine_reason = ?, updated_at = ?
		WHERE container_id = ? AND status = ?`, reason, s.now(), containerID, from).Error
}

// Reopen moves a dead-lettered order to reopened when generation (the
// x-dlq-redrive-count of a redriven record) is above the order's: the
// redrive's chain may then reserve a reefer and conclude the order again.
// A lower or equal generation changes nothing (a stale or duplicate chain
// of a redrive already run). reopened reports whether this call reopened
// it.
func (s *Store) Reopen(ctx context.Context, orderID string, generation int) (reopened bool, err error) {
	res := s.db.WithContext(ctx).Exec(`UPDATE order_states SET state = 'reopened', generation = ?,
			dead_letter_written = FALSE, claim_token = NULL, claim_owner = NULL, error_class = NULL, error_reason = NULL, error_message = NULL,
			version = version + 1, updated_at = ?
		WHERE order_id = ? AND state = 'dead-lettered' AND generation < ?`,
		generation, s.now(), orderID, generation)
	if res.Error != nil {
		return false, fmt.Errorf("reopen order %s: %w", orderID, classify(res.Error))
	}
	return res.RowsAffected == 1, nil
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

// HeldByUnallocated returns the reefers held by orders that are neither
// reserved nor allocated: always none, by the schema's CHECK; the demo
// and the tests read it to show so.
func (s *Store) HeldByUnallocated(ctx context.Context) ([]string, error) {
	var ids []string
	err := s.db.WithContext(ctx).Raw(`SELECT r.container_id FROM reefers r
		LEFT JOIN order_states o ON o.order_id = r.order_id
		WHERE r.status = 'allocated' AND (o.state IS NULL OR o.state NOT IN ('reserved', 'allocated') OR o.container_id <> r.container_id)
		ORDER BY r.container_id`).Scan(&ids).Error
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
