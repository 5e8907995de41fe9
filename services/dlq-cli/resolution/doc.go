// Package resolution is the CLI's record of which dead letters were dealt
// with, and how: redriven, edited and redriven, or marked resolved by a
// person.
//
// # Why not just a consumer group offset
//
// A consumer group stores one number per partition: "everything before
// this offset is done". A person clearing a dead-letter queue does not work
// in offset order: they redrive order O-17 at offset 40, mark the poison
// records at offsets 3 and 12 resolved, and leave offset 5 for tomorrow.
// One number cannot say that 40 is done while 5 is not. So the record of
// what was resolved has two parts:
//
//   - The resolution log, a compacted topic next to the dead-letter topic
//     (order-dead-letter.resolutions by default). One record per resolved
//     dead letter, keyed by its "partition:offset", whose JSON value says
//     what happened (Entry): the action, the note, when, by whom, and for a
//     redrive where the copy landed. Compaction keeps the latest entry per
//     key forever, so the log never loses a resolution and never grows
//     beyond one entry per dead letter. A tombstone (null value) reopens a
//     dead letter.
//
//   - The consumer group (dlq-redrive by default), committed without ever
//     joining it. Its offset on each dead-letter partition is the low
//     watermark: the first dead letter that is still pending. Everything
//     before it is resolved, so a run can start reading there, and the
//     group's lag in any Kafka tool is an honest upper bound of the backlog.
//     Cursor computes it; it only ever moves over offsets whose entries are
//     in the log.
//
// A dead letter is resolved when the log has an entry for it or its offset
// is below the group's offset. `dlq list --status`, `dlq redrive` and `dlq
// watch` all read this one definition (State.Resolved).
//
// # Order of writes, and what an interruption costs
//
// A redrive writes the copy to its target topic and waits for the
// acknowledgement, then appends the entries to the log and waits again,
// then commits the group offset. Those writes are not cancelled half-way
// when the run is interrupted (Ctrl-C, SIGTERM, a failed health probe): the
// batch in flight finishes its three steps and then the run stops. A rerun
// skips everything with an entry, so every selected dead letter is redriven
// exactly once. Only a hard kill (SIGKILL, power loss) between the first
// and second step leaves copies without entries (at most two batches, as
// the engine publishes the next batch while it records the last); the
// rerun redrives those again. That is at-least-once, which the pattern's
// consumers tolerate anyway: event ids are deterministic per order and
// event type, so a duplicate is recognised and dropped.
package resolution
