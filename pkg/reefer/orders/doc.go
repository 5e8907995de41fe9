// Package orders runs one order record through the reefer pipeline:
// decode the OrderCreated event, allocate a reefer (package allocation),
// and hand the outcome off (package kafkaretry/handoff). It is the handler
// of both services that run the allocation use case: reefer-manager (the
// first attempt, reading orders) and order-retry (every later attempt,
// reading order-retries).
//
// # Every order record ends in exactly one of five places
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
// all. The two business outcomes are events that [Router.Emit] writes
// (CloudEvents with ids derived from the order id and event type, so a
// consumer can drop the duplicates that a redelivery produces); the
// failure outcomes are the pattern's (see package handoff).
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
// logs; its Concluded field speaks package allocation's State, the one
// vocabulary of an order's conclusions.
package orders
