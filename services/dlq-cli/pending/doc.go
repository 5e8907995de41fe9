// Package pending counts the dead letters nobody has handled yet, by
// reason and error class, and exports the count as the Prometheus gauge
// dlq_dead_letters_pending{reason, class}: the number the on-call alert
// "dead letters are piling up" watches.
//
// A dead letter is pending while the resolution log has no entry for it
// and its offset is not below the dlq-redrive group's offset: the one
// definition of package resolution, which `dlq list --status pending`
// uses too. The counter reads the dead-letter topic up to the end offsets
// the broker reports, once, then only what was appended since; it reads
// the resolution log the same way (resolution.Store.Refresh) and the group
// offsets each round, and forgets the letters that became resolved and
// those the topic's retention deleted. It holds one small entry per pending
// letter (its position, reason and class), never the records.
//
// Serve runs it in `dlq watch --metrics-addr`: the watch is the
// long-running component of the CLI, and it counts independently of the
// health gate, so the count keeps rising while the backend is down, which
// is when it matters.
package pending
