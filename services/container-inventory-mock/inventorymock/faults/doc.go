// Package faults decides, request by request, how the mock inventory
// misbehaves: the fault profile engine.
//
// A [Profile] is plain data (JSON on the wire, in FAULT_PROFILE and on the admin
// API). An [Engine] holds the current profile and answers [Engine.Decide] for
// each request before the real handler runs. The decision is taken in a fixed
// order, so that a profile reads like a story:
//
//  1. outage: while an outage is active every call fails (a status such as 503,
//     or a dropped connection); it heals by itself at its end time;
//  2. rules: the first rule whose orderID / containerID regular expression
//     matches gives a fixed outcome (for example 422 for orders matching
//     ^O-PERM-: a permanent failure), or, without a status, exempts the request
//     from every random fault;
//  3. failFirst: the first N calls for each order id fail, the next ones go on
//     (the classic "transient, recovers after k retries" case);
//  4. timeoutRate and errorRate: one random draw picks hang, error or pass;
//  5. latency ± latencyJitter is added before whatever outcome was chosen.
//
// Reproducibility: the engine draws exactly two numbers from a seeded
// generator for every request in scope, whatever the outcome, so with a fixed
// seed the n-th call of a sequence always gets the same decision, and changing
// one rate does not shift the decisions of the others. Concurrent callers get
// the draws in arrival order.
package faults
