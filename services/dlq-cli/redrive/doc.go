// Package redrive republishes dead letters so the pipeline tries them
// again: to the retry topic (order-retries), as if they had just failed
// once more but with a fresh attempt budget and due now, or to the topic
// they first came from.
//
// A redriven copy keeps the dead letter's key and value byte for byte, so
// the consumer sees the same event (and can drop it if it was already
// handled: event ids are deterministic). Its headers say where it has been:
// x-original-* are kept, and x-dlq-redrive-count goes up by one. That
// count is the loop guard. A record that fails the same way after every
// redrive would otherwise cycle forever between the retry topic and the
// dead-letter topic; once its count reaches the limit (3 by default) the
// engine refuses it and reports it, and a person decides (dlq edit, dlq
// resolve).
//
// The engine writes in batches, each in three acknowledged steps: the
// copies, their entries in the resolution log, the group's watermark (see
// package resolution). An interruption lets the batch in flight finish
// those steps, so a rerun neither loses nor repeats a record. A rate
// limiter (golang.org/x/time/rate) spaces the records when a backend
// cannot take them all at once.
package redrive
