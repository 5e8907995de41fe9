// Package calls records what the mock inventory was asked and how it answered:
// a bounded log of recent calls and counters since the last reset.
//
// The log is what a test reads to assert the client's behaviour ("the order
// was tried three times, with the same idempotency key, and the third call
// succeeded"); it keeps the newest entries only, so a long run cannot exhaust
// memory, while the counters cover every call.
package calls
