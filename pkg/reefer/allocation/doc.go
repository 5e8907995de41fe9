// Package allocation is the use case "allocate a reefer for this order",
// shared by the two services that run it: reefer-manager (first attempt)
// and order-retry (every later attempt). Keeping the steps in one place
// means a retried order goes through exactly the same code as a new one.
//
// # The steps
//
// The pattern's figure numbers the happy path; this package owns two of
// its steps:
//
//	(2) write the allocation in the reefer database   -> [Store]
//	(3) update the legacy container inventory (HTTP)  -> [Inventory]
//
// Reading the order (1) and emitting the events (4, 5) belong to the
// services; they call [Service.Allocate] between the two.
//
// # Three kinds of outcome
//
// The point of the retry + dead-letter pattern is to tell apart what can
// be retried from what cannot. [Service.Allocate] gives back one of three:
//
//   - Allocated: both steps succeeded. The service emits the success events.
//   - Rejected: no free reefer has the capacity. This is a business answer,
//     not a failure: it is returned as a [Result] with a nil error, the
//     service emits OrderRejected and commits, and nobody retries it (trying
//     again in a minute would not build a bigger reefer).
//   - an error: something failed. The error carries a class from package
//     failure: transient (database unreachable, inventory answering 503,
//     timeout, circuit open) goes to the retry topic; permanent (the
//     inventory answering 409 or 422, a constraint the data breaks) goes
//     to the dead-letter topic at once, because retrying cannot change
//     the answer.
//
// # Idempotency makes retries safe
//
// A retried order runs both steps again, and so does a record that Kafka
// redelivers after a crash. That is only safe because both steps are
// idempotent: the store returns the same reefer for an order it has
// already allocated, and the inventory client sends the order id as its
// Idempotency-Key so the inventory answers a repeat with 200, not 409.
//
// # One state per order
//
// The store keeps one row per order ([State]: reserved, allocated,
// dead-lettered, reopened) that only compare-and-set transitions change,
// each together with the reefer it reserves or releases. [Store.Allocate]
// is the reservation: it refuses a dead-lettered order with
// [ErrConcluded]. The other transitions (mark allocated, claim the dead
// letter, reopen on redrive) are package orders' Ledger. An inventory
// failure is an [InventoryError] naming the reefer, so that a 409 (another
// order holds it there) can take that reefer out of the pool
// ([RefusedContainer], [Claim.Quarantine]).
//
// # Interfaces belong to the consumer
//
// [Store] and [Inventory] are declared here, where they are used, and are
// as small as the use case needs. Package reeferstore and package
// inventory implement them; tests use in-memory fakes.
package allocation
