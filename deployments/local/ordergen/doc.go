// Package ordergen makes the demo's orders: a deterministic stream of
// OrderCreated events from a seed, so that two runs with the same --seed send
// the same orders in the same order.
//
// Most orders are ordinary: a small quantity that some reefer of the fleet
// can carry, so their expected outcome is ContainerAllocated. A few ask for
// more than the biggest reefer holds (reeferstore.MaxSeedCapacity): the
// expected outcome is OrderRejected, a business answer, not a failure.
// Permanent orders carry ids that start with PermanentPrefix, which the
// demo's inventory answers with 422 whatever else happens: they belong on
// the dead-letter topic, for a person.
//
// Each Order records the outcome it should reach, so the demo can check at
// the end that every order got exactly the outcome it deserved.
package ordergen
