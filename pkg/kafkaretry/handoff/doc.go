// Package handoff turns the outcome of processing one order record into
// the records that conclude it, and writes them. It is the last step of
// both services that run the allocation use case: reefer-manager (the
// first attempt, reading orders) and order-retry (every later attempt,
// reading order-retries).
//
// # Every record ends in exactly one of five places
//
//	outcome                         written records                                  Route
//	allocated                       ContainerAllocated -> orders (key order id)      RouteAllocated
//	                                ContainerAssignedToOrder -> containers (key container id)
//	rejected (no reefer fits)       OrderRejected -> orders                          RouteRejected
//	transient failure, attempts     the record itself -> retry topic                 RouteRetry
//	left                            (key and value byte for byte, retry headers)
//	transient failure, attempts     the record itself -> dead-letter topic,          RouteDeadLetter
//	used up                         x-dlq-reason max-attempts
//	permanent failure               ... x-dlq-reason permanent-error                 RouteDeadLetter
//	undecodable record, bad headers ... x-dlq-reason poison                          RouteDeadLetter
//	too large for where it must go  ... x-dlq-reason oversize, value cut to fit      RouteDeadLetter
//
// plus RouteSkipped for events of other types, which need no record at
// all. The two business outcomes are events (CloudEvents with ids derived
// from the order id and event type, so a consumer can drop the duplicates
// that a redelivery produces); the three failure outcomes forward the
// original record unchanged with headers that say what happened (see
// package retrymeta and docs/contract.md).
//
// A config failure (401, 403, a redirect, a refused database password or a
// schema mismatch) takes the transient rows: it is retried, never
// dead-lettered at its first attempt (see package failure).
//
// # Nothing retrying cannot fix blocks a partition
//
// A record that is too large, with its new headers, for the topic it must
// go to would be refused by the broker on every retry, and its partition
// would never commit again. [Router] checks each forwarded record against
// [Router.MaxMessageBytes] before writing (and treats the broker's
// MESSAGE_TOO_LARGE the same way) and dead-letters it with reason
// oversize: x-dlq-original-size and as much of the value as the
// dead-letter topic takes. A topic that cannot be written at all for a
// reason retrying cannot fix (not authorised, unknown, a refused dead
// letter) is reported by a [Blockage]: an ERROR log naming it, a failing
// readiness check, the handoff_blocked gauge ([Metrics]).
//
// # Commit after hand-off
//
// A record's offset may only be committed once its conclusion is
// acknowledged by the broker; otherwise a crash between the commit and the
// write loses the order. Each outcome is therefore written with one
// WriteMessages call, and every method returns an error when the write
// failed: the caller must then not commit the record, and processes it
// again (the deterministic event ids and the idempotent allocation make the
// repeat harmless). A nil error means "this record is done, commit it".
//
// # Headers never grow
//
// A record may travel reefer-manager -> order-retries -> order-retry ->
// order-retries ... -> order-dead-letter -> (redrive) -> order-retries.
// Each hop rewrites the same retry headers with retrymeta.Apply, which
// replaces instead of appending, so the record has the same number of
// headers after the tenth hop as after the first. The original coordinates
// (topic, partition, offset, timestamp) and the first-failure time are
// taken from the first hop and kept from then on.
//
// # One conclusion per order, even with two retry chains
//
// Every rebalance of order-retry re-runs records whose next attempts are
// already published, so an order routinely has two chains running at
// nearly the same instant. With a [Ledger] (the reefer database), each
// order has one state row, and the [Processor] wins every conclusion there
// by a compare-and-set before it writes anything to Kafka: reserved ->
// allocated before the success events, a dead-letter claim (which also
// gives the reefer back) before the dead letter. The chain that loses
// writes nothing, or the success events again if the order is allocated.
// The record that won a claim and crashed before its write finds its own
// claim when it is read again, and writes the dead letter then. A
// redriven record reopens its order. docs/contract.md draws the machine.
// Without a Ledger (nil), every record is processed on its own.
//
// # Using it
//
// Both services build a [Processor] (an allocator plus a [Router]) and call
// [Processor.Process] for each record; they differ only in how they read
// records and when they run them (order-retry waits until x-retry-due-at).
// The [Decision] returned tells which way the record went, for metrics and
// logs.
package handoff
