// Package demo runs the whole retry and dead-letter pattern in one process
// and tells the story as it happens: the local demo behind `make demo`.
//
// Everything runs with the production code paths, configured the way a
// deployment would configure them, only with short delays: an embedded
// Kafka-protocol broker (pkg/platform/devbroker), a SQLite reefer database in a temp
// file, the inventory mock, reefer-manager (manager.Run), order-retry
// (retrier.Run), and at the end the dlq CLI (dlq.Run). No service knows it is
// in a demo; the demo only steers the inventory mock's faults through its
// admin API, the way a tester would.
//
// The scenario, in the README's step numbers:
//
//  1. healthy: orders flow through steps 1-5;
//  2. flaky (30% 503): failed orders take the retry topic and are allocated
//     on a later attempt, after growing, jittered delays (steps 4-6);
//  3. permanent refusals go to the dead-letter topic at once, then an outage
//     longer than the retry budget dead-letters everything (step 7);
//  4. heal: dlq redrive --when-healthy sends the transient dead letters back;
//     the permanent ones stay, listed for a person.
//
// What the screen shows comes from a tracker (package tracker) that reads
// the topics, not from the services' counters, and the run ends with an
// invariant check against the topics, the reefer database and the
// inventory: every order in exactly one terminal state, none lost, none
// allocated twice.
package demo
