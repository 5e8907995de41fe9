// Package chaos is the suite's fault campaign, in the manner of Jepsen: it
// runs orders through the real services while a nemesis breaks things on a
// schedule drawn from a seed, then a checker reads everything the system
// wrote and says, order by order, whether the suite's promises held.
//
// The system under test is the binaries `make build` puts in bin/, run as
// processes of the test so that they can be killed (SIGKILL) or stopped
// (SIGTERM) and restarted in milliseconds:
//
//	                  ┌──────────── test process ─────────────┐
//	  loader ────────▶│ embedded broker (pkg/platform/devbroker, kfake) │◀── produce faults (kfake.Fault)
//	                  └───────▲──────────────▲────────────────┘
//	reefer-manager-1, -2 ─────┘              └──── order-retry-1, -2
//	         │   │                                     │   │
//	         │   └──────── inventory mock (process) ◀──┘   │   admin API: 503, hang, 401, 409, 422, 3xx
//	         └────────────── TCP proxy ─▶ Postgres (container) ◀─ docker pause / restart
//
// Files, in the order a campaign runs:
//
//   - schedule.go: the fault schedule, a pure function of (seed, orders):
//     the same seed always gives the same schedule, which is printed on
//     failure so that `make chaos SEED=<n>` replays it.
//   - stack.go, process.go, postgres.go: the broker, Postgres behind a TCP
//     proxy (its port survives a restart), the inventory mock and two
//     replicas of each pipeline service as processes.
//   - nemesis.go: carries the schedule out: signals, docker pause and
//     restart, inventory fault profiles and stolen containers, broker
//     produce errors, poison and oversize records, dlq redrive.
//   - check.go: the checker. It reuses tests/integration/outcomes to read
//     the four topics, the database and the inventory, adds the
//     dead-letter resolution log and the reefers table, and runs the
//     named checks (Checks) over every order.
//
// The campaign's interleavings still depend on the machine (processes,
// the broker and Postgres run concurrently): a seed fixes what is done and
// when, not the exact order of every record. A failure is therefore
// reported with everything needed to understand it, not only the seed.
package chaos
