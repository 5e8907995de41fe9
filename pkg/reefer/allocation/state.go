package allocation

import (
	"errors"
	"time"

	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/failure"
)

// State is where an order stands in the reefer database. Each order has
// one row; only compare-and-set transitions change it, each in one
// transaction with the reefer it reserves or releases (docs/contract.md
// draws the machine):
//
//	(none) ──reserve──> reserved ──mark allocated──> allocated (final)
//	   │                   │
//	   └──claim dead letter┴──> dead-lettered ──redrive (count > generation)──> reopened
//	                                                 reopened ──reserve──> reserved
//	                                                 reopened ──claim dead letter──> dead-lettered
type State string

// The states of an order.
const (
	// StateReserved: the order holds a reefer in the database; the
	// inventory may not have recorded it yet.
	StateReserved State = "reserved"
	// StateAllocated: the database and the inventory hold the reefer for
	// the order. Final: no transition leaves it.
	StateAllocated State = "allocated"
	// StateDeadLettered: a chain claimed the order's dead letter; the
	// order holds no reefer (the one of its attempt, if any, waits for
	// its release in the inventory: see Releaser).
	StateDeadLettered State = "dead-lettered"
	// StateReopened: an operator redrove the dead letter; the order holds
	// no reefer and may be reserved again.
	StateReopened State = "reopened"
)

// ErrConcluded is wrapped by the error a Store returns when asked to
// reserve a reefer for an order that is dead-lettered: the record belongs
// to a chain that lost (or to the chain that claimed the dead letter, run
// again after a crash). It is not a failure of the order; package orders
// tells the two apart with the order's Claim.
var ErrConcluded = failure.NewPermanent("order-concluded", errors.New("order is dead-lettered"))

// Claim is a chain's request to dead-letter an order. The store grants it
// only when the order is not concluded, and records it so that the same
// record, processed again after a crash, can write the same dead letter.
type Claim struct {
	// Token names the record that claims: its topic/partition@offset. A
	// redelivery of that record has the same token; a duplicate chain's
	// record does not.
	Token string
	// Owner names the process that claims (a random id per process), so
	// that a redelivery in the same process can tell its own claim from
	// one another process may still be writing.
	Owner string
	// Generation is the chain's x-dlq-redrive-count. A claim below the
	// order's generation comes from a chain older than the last redrive.
	Generation int
	// ErrorClass, ErrorReason and ErrorMessage describe the failure, so
	// that the dead letter can be written again from the record.
	ErrorClass   failure.Class
	ErrorReason  string
	ErrorMessage string
	// Quarantine names the reefer the inventory refused with 409 (another
	// order holds it there): it leaves the pool instead of going back.
	Quarantine string
	// Written is set by the store, not the claimer: the claim's dead
	// letter reached the dead-letter topic (see MarkWritten of package
	// handoff's Ledger), so the claiming record, read again, writes
	// nothing.
	Written bool
	// ClaimedAt is set by the store: when the claim was granted.
	ClaimedAt time.Time
}

// Err rebuilds the failure a claim recorded, for the dead letter written
// again after a crash.
func (c Claim) Err() error {
	cause := errors.New(c.ErrorMessage)
	if c.ErrorClass == failure.Permanent {
		return failure.NewPermanent(c.ErrorReason, cause)
	}
	return failure.NewTransient(c.ErrorReason, cause)
}

// ClaimOutcome says what a store did with a Claim.
type ClaimOutcome string

const (
	// ClaimGranted: the order is now dead-lettered by this claim (or was
	// already, by this same token); write the dead letter.
	ClaimGranted ClaimOutcome = "granted"
	// ClaimAllocated: the order is allocated (another chain won); write
	// its success events again, not a dead letter.
	ClaimAllocated ClaimOutcome = "allocated"
	// ClaimStale: another claim dead-lettered the order, or the chain is
	// older than the last redrive; write nothing.
	ClaimStale ClaimOutcome = "stale"
)

// ClaimResult is a store's answer to a Claim.
type ClaimResult struct {
	Outcome ClaimOutcome
	// ContainerID is the allocated reefer (ClaimAllocated).
	ContainerID string
	// Released is the reefer the order gave up (ClaimGranted): pending
	// release, back in the pool once the inventory released it (see
	// Releaser). Quarantined is the one it took out of the pool instead.
	Released    string
	Quarantined string
	// Claim is the claim the order holds (ClaimGranted): the one asked
	// for, or the earlier one of the same token.
	Claim Claim
	// Repeated is set with ClaimGranted when the order was already
	// dead-lettered by the same token: this record, delivered again,
	// claimed it before (see Claim.Written and Claim.ClaimedAt).
	Repeated bool
}

// Order is one order's row in the reefer database.
type Order struct {
	OrderID     string
	State       State
	ContainerID string // reserved and allocated only
	// Generation is the redrive count the order was last reopened or
	// dead-lettered at.
	Generation int
	// Claim is the dead-letter claim (dead-lettered only).
	Claim   Claim
	Version int
}
