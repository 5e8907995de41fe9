// Package offsets decides which Kafka offsets are safe to commit when records
// finish out of order.
//
// # The problem
//
// A consumer group remembers one number per partition: the committed offset,
// the position from which a restarted consumer reads again. Everything below
// it counts as done. That is easy while records are processed one at a time:
// finish record 7, commit "continue at 8". It breaks as soon as records are
// processed concurrently. Say records 5, 6 and 7 of a partition run at the
// same time and 6 and 7 finish first. Committing 7 now would tell the group
// that 5 is done too; if the process crashes before 5 finishes, the restarted
// consumer continues at 8 and record 5 is lost.
//
// # Contiguous-prefix commits
//
// A [Tracker] keeps, per partition, the offsets that were fetched ([Tracker.Begin],
// in fetch order) and marks them finished ([Tracker.Done], in any order). Only
// the contiguous prefix of finished offsets is committable: with 5 running and
// 6, 7 finished, nothing new is committable; when 5 finishes, 7 is. After a
// crash the group re-delivers from the oldest unfinished record, so unfinished
// work is redone (at-least-once) and never skipped. Records that had already
// finished behind it are delivered again too; the handlers must therefore be
// idempotent (deterministic event ids, upserts), which the pattern needs
// anyway.
//
// Kafka offsets of a partition increase but need not be consecutive
// (compaction and transaction markers leave gaps), so the tracker never
// computes "offset+1"; it remembers the offsets it was given.
//
// # Which offset Committable returns
//
// [Tracker.Committable] returns, per partition that advanced, the offset of
// the LAST FINISHED RECORD of the prefix, not the next offset to read. That is
// the convention of kafka-go: Reader.CommitMessages(ctx, msg) stores
// msg.Offset+1 itself. So pass kafka.Message{Topic: t, Partition: p, Offset: o}
// with o straight from Committable; adding 1 yourself would skip a record.
//
// # Rebalances
//
// kafka-go's Reader with a GroupID hides rebalances: after a partition is
// revoked and assigned again, the reader simply starts returning records from
// the group's committed offset, which may be lower than offsets this process
// already fetched. The tracker recognises this: a Begin at or below the newest
// offset tracked for the partition means re-delivery, and the partition's
// state is reset to start at that offset. Handlers of the earlier delivery may
// still be running; their Done for an offset that is tracked again counts for
// the new delivery as well, which is safe, because that record's outcome was
// acknowledged. A Done for an offset no longer tracked is ignored.
package offsets
