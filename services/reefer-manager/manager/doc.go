// Package manager is the reefer-manager service: it reads OrderCreated
// events from the orders topic and allocates a reefer container to each
// order, following the happy path of the pattern's figure:
//
//	(1) read the order            consumer.Run over a kafka-go group reader
//	(2) write the reefer database  reeferstore (Postgres, or SQLite for the demo)
//	(3) update the inventory       inventory client over HTTP, behind a circuit breaker
//	(4) emit ContainerAllocated to orders
//	(5) emit ContainerAssignedToOrder to containers
//
// Steps (2)-(5) are shared with order-retry through packages orders and handoff. When
// they fail, the order is not retried here: it is handed to the retry
// topic (transient failure) or the dead-letter topic (permanent failure,
// undecodable record) and the service moves on, so a failing inventory
// does not slow the input down.
//
// A record's offset is committed only after its outcome is acknowledged
// by the broker (COMMIT_MODE=after-handoff), so a crash re-delivers
// unfinished records instead of losing them. COMMIT_MODE=before-processing
// shows, for teaching, what goes wrong otherwise.
//
// main calls ConfigFromEnv and Run; the local demo calls Run with its own
// Config, several services in one process. Nothing here is global.
package manager

// About says what the service does, for --help.
const About = `reefer-manager consumes OrderCreated events from the orders topic, allocates a reefer
container to each order (the reefer database, then the legacy inventory) and emits
ContainerAllocated and ContainerAssignedToOrder, or OrderRejected. An order that fails is not
retried here: a transient failure goes to the retry topic (order-retry takes it from there), a
permanent one to the dead-letter topic. Its offset is committed only once that hand-off is
acknowledged. /healthz, /readyz and /metrics are served on HTTP_ADDR.`
