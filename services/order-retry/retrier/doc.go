// Package retrier is the order-retry service: it reads the orders that
// failed with a transient error from the retry topic, waits until each is
// due, and runs the allocation again; the failure path of the pattern's
// figure:
//
//	(4) reefer-manager publishes the failed order to order-retries
//	(5) this service consumes it          consumer.Run over a kafka-go group reader
//	    and holds it until x-retry-due-at  scheduler: a heap of due times, not a sleep
//	(6) calls again after the delay       allocation over reeferstore and the inventory
//	    success: ContainerAllocated and ContainerAssignedToOrder, as reefer-manager
//	    transient failure: republish to order-retries, x-retry-attempt + 1, new due time
//	(7) attempts used up, permanent failure or unreadable record:
//	    publish to order-dead-letter with the error and its stack in the headers
//
// Steps (6) and (7) are packages orders and handoff, shared with reefer-manager, so a
// retried order goes through exactly the code of a new one.
//
// # Waiting without blocking
//
// A record is never run before its due time, and a record due sooner is
// never held back by one due later: fetched records wait in a min-heap of
// due times (package scheduler) while the fetch loop keeps going, and a
// bounded pool of workers runs them when due. At MAX_PENDING held records
// fetching pauses; nothing is dropped. Offsets are committed per
// partition only up to the first record not yet concluded (package
// offsets), so records still waiting when the process stops are simply
// delivered again, and since the due time travels in the header they are
// scheduled for the same moment.
//
// main calls ConfigFromEnv and Run; the local demo calls Run with its own
// Config, several services in one process. Nothing here is global.
package retrier

// About says what the service does, for --help.
const About = `order-retry consumes the orders that failed with a transient error from the retry topic,
holds each until its x-retry-due-at, and allocates it again, as reefer-manager does. An order
that fails again goes back to the retry topic with the next back-off; after RETRY_MAX_ATTEMPTS
attempts, or at a permanent failure, it goes to the dead-letter topic (see the dlq command).
/healthz, /readyz and /metrics are served on HTTP_ADDR.`
