package allocation

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/failure"
)

// Reservation names an order and a reefer reserved for it.
type Reservation struct {
	OrderID     string
	ContainerID string
}

// ErrReleasePending is wrapped by the error a store returns when asked to
// reopen an order that still holds the reefer of its dead-lettered
// attempt: the inventory may record that reefer for the order, so it must
// be released there first (see Releaser), or the order would end up with
// two. It is transient: release, then try again.
var ErrReleasePending = failure.NewTransient("release-pending",
	errors.New("the order's previous reefer is not yet released in the inventory"))

// ReleaseStore is what a Releaser needs from the reefer database.
type ReleaseStore interface {
	// PendingReleases returns up to limit reefers held by orders that no
	// longer hold them (dead-lettered, or reserved with another reefer):
	// each waits for its inventory release. orderID "" means any order.
	PendingReleases(ctx context.Context, orderID string, limit int) ([]Reservation, error)
	// FinishRelease gives the reefer back to the pool, if it is still
	// pending release for the order. freed is false when it is not (a
	// concurrent release finished first).
	FinishRelease(ctx context.Context, r Reservation) (freed bool, err error)
	// ReleaseWith runs release and then FinishRelease, with no other
	// ReleaseWith of the same reefer at the same time; done is false when
	// the reefer is not pending release or another one is releasing it.
	ReleaseWith(ctx context.Context, r Reservation, release func(context.Context) error) (done bool, err error)
	// QuarantinePending takes the reefer out of the pool, with reason, if
	// it is still pending release for the order, and records the refusal:
	// the inventory refused to release it and may hold it for the order,
	// so the order is not reopened until a later release is accepted.
	QuarantinePending(ctx context.Context, r Reservation, reason string) (quarantined bool, err error)
	// RefusedReleases returns up to limit releases the inventory refused,
	// oldest first; orderID "" means any order.
	RefusedReleases(ctx context.Context, orderID string, limit int) ([]Reservation, error)
	// RefusalLifted records that the inventory released r's reefer after
	// all: the reefer goes back to the pool.
	RefusalLifted(ctx context.Context, r Reservation) (freed bool, err error)

	// DueRechecks returns up to limit releases done at or before
	// releasedBy, oldest first: each is released in the inventory once
	// more (see Releaser.Recheck).
	DueRechecks(ctx context.Context, releasedBy time.Time, limit int) ([]Reservation, error)
	// RecheckWith runs release unless r's order holds r's reefer again,
	// with no allocation of that reefer at the same time, and then
	// forgets the recheck; done is false when the reefer is busy now.
	RecheckWith(ctx context.Context, r Reservation, release func(context.Context) error) (done bool, err error)
	// RefuseRecheck records that the inventory refused r's recheck for
	// good: the recheck becomes a refused release (see RefusedReleases),
	// as the inventory may hold the reefer for the order.
	RefuseRecheck(ctx context.Context, r Reservation) error
}

// ReleaseInventory forgets an allocation in the legacy inventory; it must
// succeed when the inventory does not hold the container for the order.
type ReleaseInventory interface {
	Release(ctx context.Context, containerID, orderID string) error
}

// Releaser gives the reefers of dead-lettered attempts back: first in the
// inventory, then to the database's pool. The order matters. A reefer
// reserved for an order may be recorded in the inventory (its call timed
// out after the inventory did it, or a duplicate chain's call succeeded
// as another chain dead-lettered the order); back in the pool at once,
// the next order would get it and an inventory 409, and a redrive of the
// order a second reefer while the inventory still holds the first.
//
// The Processor releases at once after a dead letter; Run sweeps what
// could not be released then (the inventory was down, the process died).
//
// A release can also be overtaken: an allocation call made before it (by
// a chain of the order that was still running, or by a process that died
// before it could record the inventory's answer) lands in the inventory
// after it. So Run releases every released pair once more when the
// release is RecheckAfter old (see Recheck); a call that lands later
// than that is not caught, hence many times the inventory timeout.
type Releaser struct {
	Store     ReleaseStore
	Inventory ReleaseInventory
	Log       *slog.Logger
	// RecheckAfter is how old a release is when Recheck releases it
	// again; 0 rechecks every release at the next sweep.
	RecheckAfter time.Duration
}

// Release releases one reefer in the inventory, then frees it in the
// database. An inventory that refuses the release for good (a permanent
// error) leaves the reefer's state unknown: it is quarantined, for a
// person to see, the refusal is recorded so that its order gets no
// second reefer meanwhile, and Release returns nil. Every sweep asks the
// inventory again (see Sweep): the refusal may be a passing fault, or a
// person fixes the inventory.
func (r Releaser) Release(ctx context.Context, res Reservation) error {
	_, err := r.Store.ReleaseWith(ctx, res, func(ctx context.Context) error {
		return r.Inventory.Release(ctx, res.ContainerID, res.OrderID)
	})
	if err != nil {
		if failure.ClassOf(err) != failure.Permanent {
			return fmt.Errorf("release reefer %s of order %s: %w", res.ContainerID, res.OrderID, err)
		}
		reason := fmt.Sprintf("the inventory refused to release it from order %s: %v", res.OrderID, err)
		quarantined, qerr := r.Store.QuarantinePending(ctx, res, reason)
		if qerr != nil {
			return fmt.Errorf("quarantine reefer %s of order %s: %w", res.ContainerID, res.OrderID, qerr)
		}
		if quarantined {
			r.Log.WarnContext(ctx, "reefer quarantined: the inventory refused to release it; every sweep asks again", "container_id", res.ContainerID, "order_id", res.OrderID, "err", err)
		}
		return nil
	}
	return nil
}

// ReleaseOrder releases the reefers pending release for one order, and
// asks again for those whose release the inventory refused.
func (r Releaser) ReleaseOrder(ctx context.Context, orderID string) error {
	pending, err := r.Store.PendingReleases(ctx, orderID, 10)
	if err != nil {
		return fmt.Errorf("releases of order %s: %w", orderID, err)
	}
	var errs []error
	for _, res := range pending {
		errs = append(errs, r.Release(ctx, res))
	}
	_, err = r.retryRefused(ctx, orderID, 10)
	return errors.Join(append(errs, err)...)
}

// retryRefused asks the inventory again to release up to limit reefers
// whose release it refused (orderID "" means any order); lifted counts
// those it released now, which go back to the pool. A refusal again is
// no error: the reefer stays quarantined until the next sweep.
func (r Releaser) retryRefused(ctx context.Context, orderID string, limit int) (lifted int, err error) {
	refused, err := r.Store.RefusedReleases(ctx, orderID, limit)
	if err != nil {
		return 0, fmt.Errorf("refused releases: %w", err)
	}
	var errs []error
	for _, res := range refused {
		err := r.Inventory.Release(ctx, res.ContainerID, res.OrderID)
		switch {
		case failure.ClassOf(err) == failure.Permanent:
			r.Log.DebugContext(ctx, "the inventory still refuses to release a quarantined reefer", "container_id", res.ContainerID, "order_id", res.OrderID, "err", err)
			if orderID != "" {
				errs = append(errs, fmt.Errorf("reefer %s: the inventory still refuses to release it: %w", res.ContainerID, failure.NewTransient("release-refused", err)))
			}
			continue
		case err != nil:
			errs = append(errs, fmt.Errorf("release reefer %s of order %s again: %w", res.ContainerID, res.OrderID, err))
			continue
		}
		if _, err := r.Store.RefusalLifted(ctx, res); err != nil {
			errs = append(errs, err)
			continue
		}
		r.Log.InfoContext(ctx, "the inventory released a quarantined reefer after all; it is back in the pool", "container_id", res.ContainerID, "order_id", res.OrderID)
		lifted++
	}
	return lifted, errors.Join(errs...)
}

// Sweep releases up to limit pending reefers and says how many it freed.
func (r Releaser) Sweep(ctx context.Context, limit int) (released int, err error) {
	pending, err := r.Store.PendingReleases(ctx, "", limit)
	if err != nil {
		return 0, fmt.Errorf("pending releases: %w", err)
	}
	var errs []error
	for _, res := range pending {
		if err := r.Release(ctx, res); err != nil {
			errs = append(errs, err)
			continue
		}
		released++
	}
	return released, errors.Join(errs...)
}

// Recheck releases in the inventory, once more, up to limit pairs
// released at least RecheckAfter ago, and says how many it rechecked. A
// pair whose order holds the reefer again is forgotten without a call.
// An answer that the inventory holds nothing there for the order (a 409:
// another order holds it; a 404: no such reefer; both are a done release
// for ReleaseInventory) ends the recheck. A refusal for good (any other
// permanent error) turns it into a refused release: the inventory may
// hold the reefer for the order, so the order is not reopened until a
// later sweep's release is accepted.
func (r Releaser) Recheck(ctx context.Context, limit int) (rechecked int, err error) {
	due, err := r.Store.DueRechecks(ctx, time.Now().Add(-r.RecheckAfter), limit)
	if err != nil {
		return 0, fmt.Errorf("releases due for a recheck: %w", err)
	}
	var errs []error
	for _, res := range due {
		done, err := r.Store.RecheckWith(ctx, res, func(ctx context.Context) error {
			return r.Inventory.Release(ctx, res.ContainerID, res.OrderID)
		})
		if err != nil && failure.ClassOf(err) == failure.Permanent {
			r.Log.WarnContext(ctx, "the inventory refused to release a reefer once more; its order gets no other until it does, and every sweep asks again", "container_id", res.ContainerID, "order_id", res.OrderID, "err", err)
			done, err = true, r.Store.RefuseRecheck(ctx, res)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("recheck the release of reefer %s from order %s: %w", res.ContainerID, res.OrderID, err))
			continue
		}
		if done {
			rechecked++
		}
	}
	return rechecked, errors.Join(errs...)
}

// Run sweeps every interval until ctx ends, each sweep within timeout.
// Failures are logged: the next sweep tries again.
func (r Releaser) Run(ctx context.Context, interval, timeout time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		sctx, cancel := context.WithTimeout(ctx, timeout)
		n, err := r.Sweep(sctx, 100)
		cancel()
		if n > 0 {
			r.Log.InfoContext(ctx, "released reefers of dead-lettered attempts", "released", n)
		}
		if err != nil && ctx.Err() == nil {
			r.Log.WarnContext(ctx, "some reefers of dead-lettered attempts are not released yet; the next sweep tries again", "err", err)
		}
		sctx, cancel = context.WithTimeout(ctx, timeout)
		_, err = r.Recheck(sctx, 500)
		_, rerr := r.retryRefused(sctx, "", 100)
		cancel()
		err = errors.Join(err, rerr)
		if err != nil && ctx.Err() == nil {
			r.Log.WarnContext(ctx, "some releases are not rechecked or retried yet; the next sweep tries again", "err", err)
		}
	}
}

// TryRelease is Release for a caller that cannot wait for the inventory
// (the Processor, right after a dead letter): a failure is logged, and
// Run's next sweep tries again.
func (r Releaser) TryRelease(ctx context.Context, res Reservation) {
	if err := r.Release(ctx, res); err != nil && ctx.Err() == nil {
		r.Log.DebugContext(ctx, "reefer release deferred to the next sweep", "err", err)
	}
}
