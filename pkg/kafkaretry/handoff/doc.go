// Package handoff hands a record whose processing failed to the retry
// topic or the dead-letter topic, and writes the records of a success, so
// that every record ends in one known place before its offset is
// committed. Its [Router] is the last step of every stage of the pattern
// (see package kafkaretry); package reefer/orders adds the reefer
// domain's outcome events on top of it.
//
// # Every record ends in exactly one of these places
//
//	outcome                         written records                                  Route
//	success                         the handler's own records (Router.Write), or     RouteDone, or the
//	                                the domain's events (orders: ContainerAllocated,  domain's routes
//	                                OrderRejected...)                                (RouteAllocated, RouteRejected)
//	transient failure, attempts     the record itself -> retry topic                 RouteRetry
//	left                            (key and value byte for byte, retry headers)
//	transient failure, attempts     the record itself -> dead-letter topic,          RouteDeadLetter
//	used up                         x-dlq-reason max-attempts
//	permanent failure               ... x-dlq-reason permanent-error                 RouteDeadLetter
//	undecodable record, bad headers ... x-dlq-reason poison                          RouteDeadLetter
//	too large for where it must go  ... x-dlq-reason oversize, value cut to fit      RouteDeadLetter
//
// plus RouteSkipped for records that need no write at all. The failure
// outcomes forward the original record unchanged with headers that say
// what happened (see package retrymeta and docs/contract.md).
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
// A record may travel input stage -> retry topic -> retry stage -> retry
// topic ... -> dead-letter topic -> (redrive) -> retry topic.
// Each hop rewrites the same retry headers with retrymeta.Apply, which
// replaces instead of appending, so the record has the same number of
// headers after the tenth hop as after the first. The original coordinates
// (topic, partition, offset, timestamp) and the first-failure time are
// taken from the first hop and kept from then on.
package handoff
