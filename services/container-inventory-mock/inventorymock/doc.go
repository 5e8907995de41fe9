// Package inventorymock is the mock of the legacy container-inventory service:
// the system whose failures the retry and dead-letter pattern exists for.
//
// It serves the inventory API reefer-manager calls (allocate a container to an
// order, idempotently), and in front of every inventory call a fault engine
// (package faults) decides whether the call succeeds, waits, fails with a
// status, hangs until the client gives up, or loses its connection. The fault
// profile comes from FAULT_PROFILE at start and can be changed while running
// through the admin API (/admin/*, client in package admin), which also shows
// the log of recent calls (package calls) and counters.
//
// The request path of an inventory call, in the order the code runs:
//
//	inventoryRoute: parse and validate the input (the order id is needed to decide)
//	  -> faults.Engine.Decide
//	  -> apply: wait latency / hang / drop / injected error, or the real handler
//	  -> record the call (call log, stats, metrics)
//
// main reads the environment with ConfigFromEnv and calls Run; the local demo
// builds a Config in code and uses New, Start and Shutdown.
package inventorymock

// About says what the service does, for --help.
const About = `container-inventory-mock plays the legacy container-inventory service that reefer-manager
and order-retry call (PUT /containers/{id}/allocation), with faults you can steer while it runs:
FAULT_PROFILE at start, the admin API (/admin/*) later. See README.md for the API and the
fault profiles.`
