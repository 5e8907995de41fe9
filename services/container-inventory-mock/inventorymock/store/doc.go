// Package store keeps the mock inventory's containers in memory: which
// container is allocated to which order.
//
// Allocation is idempotent, the property the retry pattern depends on: a client
// that times out cannot know whether its call took effect, so it calls again
// with the same order; the store answers that repeat with the very same record
// instead of allocating twice. Only a different order asking for an allocated
// container is refused (a conflict, which callers treat as permanent).
package store
