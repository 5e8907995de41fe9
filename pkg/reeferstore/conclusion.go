package reeferstore

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// The outcomes an order_conclusions row can hold.
const (
	OutcomeAllocated    = "allocated"
	OutcomeDeadLettered = "dead-lettered"
)

// An order can have more than one retry chain: when order-retry is killed
// after it republished attempt n+1 but before it committed attempt n, the
// redelivered attempt n starts a second chain. The conclusion record lets
// a chain see that the order already ended elsewhere (see package
// handoff's Ledger). Allocation always wins: an allocated order never
// turns back into a dead-lettered one. The reefer of an allocated order
// is in the allocations table (Allocation).

// MarkAllocated records that the allocation of orderID succeeded (the
// hand-off marks it just before writing the success events). It replaces
// a dead-lettered conclusion: the reefer is held, so "allocated" is the
// truth whatever a stale chain concluded.
func (s *Store) MarkAllocated(ctx context.Context, orderID string) error {
	return s.MarkAllocatedBatch(ctx, []string{orderID})
}

// MarkAllocatedBatch is MarkAllocated for several orders in one statement
// (one round trip, one commit), for a service that gathers the marks of
// concurrent records. Repeated ids are allowed.
func (s *Store) MarkAllocatedBatch(ctx context.Context, orderIDs []string) error {
	if len(orderIDs) == 0 {
		return nil
	}
	// Postgres refuses an upsert that touches one row twice.
	ids := slices.Clone(orderIDs)
	slices.Sort(ids)
	ids = slices.Compact(ids)

	now := s.now()
	values := make([]string, len(ids))
	args := make([]any, 0, 2*len(ids))
	for i, id := range ids {
		values[i] = "(?, '" + OutcomeAllocated + "', 0, ?)"
		args = append(args, id, now)
	}
	err := s.db.WithContext(ctx).Exec(`INSERT INTO order_conclusions (order_id, outcome, redrive_count, concluded_at)
		VALUES `+strings.Join(values, ", ")+`
		ON CONFLICT (order_id) DO UPDATE SET outcome = excluded.outcome, redrive_count = 0, concluded_at = excluded.concluded_at
		WHERE order_conclusions.outcome <> excluded.outcome`, args...).Error
	if err != nil {
		if len(ids) == 1 {
			return fmt.Errorf("mark order %s allocated: %w", ids[0], classify(err))
		}
		return fmt.Errorf("mark %d orders allocated: %w", len(ids), classify(err))
	}
	return nil
}

// MarkDeadLettered records that orderID was dead-lettered after
// redriveCount redrives. It never overwrites an allocated conclusion, and
// it only raises the redrive count of a dead-lettered one, so that a late
// stale chain cannot make a newer redrive look stale.
func (s *Store) MarkDeadLettered(ctx context.Context, orderID string, redriveCount int) error {
	err := s.db.WithContext(ctx).Exec(`INSERT INTO order_conclusions (order_id, outcome, redrive_count, concluded_at)
		VALUES (?, ?, ?, ?)
		ON CONFLICT (order_id) DO UPDATE SET redrive_count = excluded.redrive_count, concluded_at = excluded.concluded_at
		WHERE order_conclusions.outcome = excluded.outcome AND order_conclusions.redrive_count < excluded.redrive_count`,
		orderID, OutcomeDeadLettered, redriveCount, s.now()).Error
	if err != nil {
		return fmt.Errorf("mark order %s dead-lettered: %w", orderID, classify(err))
	}
	return nil
}

// Conclusion returns the recorded conclusion of orderID; ok is false when
// the order has none yet. redriveCount is the x-dlq-redrive-count of the
// chain that dead-lettered the order, and 0 for an allocated one.
func (s *Store) Conclusion(ctx context.Context, orderID string) (outcome string, redriveCount int, ok bool, err error) {
	var rows []struct {
		Outcome      string
		RedriveCount int
	}
	err = s.db.WithContext(ctx).Raw(`SELECT outcome, redrive_count FROM order_conclusions WHERE order_id = ?`, orderID).
		Scan(&rows).Error
	if err != nil {
		return "", 0, false, fmt.Errorf("read conclusion of order %s: %w", orderID, classify(err))
	}
	if len(rows) == 0 {
		return "", 0, false, nil
	}
	return rows[0].Outcome, rows[0].RedriveCount, true, nil
}
