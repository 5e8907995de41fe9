// Package orderload produces OrderCreated events to a Kafka topic at a
// chosen rate: the order service of the pattern's figure, for a stack that
// has no order service of its own (the compose stack, a cluster).
//
// It is the scenario driver behind `make load`: start the stack, open the
// dashboard, send ten thousand orders at 500 per second and watch them go
// through reefer-manager, into order-retries when the inventory fails, out
// again when it recovers, and into order-dead-letter when the retry budget
// runs out.
//
// Orders are generated from a seed, so two runs with the same seed and run
// id send the same orders. Each record is keyed by its order id, the
// contract's key of the orders topic, and its value is a CloudEvents 1.0
// envelope built by package events: exactly what reefer-manager decodes.
// Two kinds of records exercise the other outcomes on request: orders too
// big for any reefer (OrderRejected, a business answer) and poison records
// that are no event at all (dead-lettered at once with reason poison).
//
// The rate is kept by the schedule, not by sleeping per record: after t
// seconds, rate·t orders are due, and whatever is due is written in one
// batch. A slow broker therefore lowers the rate only while it is slow;
// the run catches up afterwards, and never runs ahead of the schedule.
package orderload
