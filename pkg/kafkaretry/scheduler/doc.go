// Package scheduler runs records at their due time without ever sleeping in
// the fetch loop.
//
// # The problem
//
// A retry record carries the time before which it must not be retried (the
// x-retry-due-at header): the backoff. Two common implementations get the
// waiting wrong:
//
//   - Sleeping in the listener until the record is due. The consumer blocks,
//     every record waits behind the current one's delay, and a long sleep can
//     exceed the group's poll interval and trigger a rebalance.
//   - Pausing the partition until its head record is due, then resuming. No
//     thread sleeps, but the partition is a queue: a record due in 1 s that
//     sits behind one due in 60 s waits 60 s (head-of-line blocking), because
//     delays grow with the attempt number and records of different attempts
//     share a partition.
//
// # A heap of due times
//
// [Scheduler] keeps fetching. Each record goes into a min-heap ordered by due
// time (ties: fetch order), and a single timer loop sleeps only until the
// earliest due time, then hands due records to a bounded pool of workers
// ([Config.Workers]). So:
//
//   - a record never starts before its due time;
//   - a record due sooner is never held back by an earlier-offset record due
//     later: the heap orders by due time, not by offset;
//   - memory is bounded: at most [Config.MaxPending] records are held
//     (waiting or running); at the bound, Dispatch blocks, which pauses
//     fetching. Nothing is dropped.
//
// Records now finish in due-time order, not offset order, so the offset of a
// record that finished may not be committed while an earlier-offset record
// still waits. consumer.Run takes care of that: it commits only the
// contiguous prefix of finished offsets (package offsets). The committed
// offset therefore lags behind the work done, by up to the longest delay.
//
// # Shutdown and restart
//
// On Close the scheduler stops accepting records, lets running work finish
// and simply drops the records still waiting. Their offsets were never
// committed, so the group re-delivers them after a restart; since the due time
// travels in the header, the new process schedules them at the same moment.
// A record may therefore run twice around a restart (one that finished after
// the last commit): the work must be idempotent.
//
// # Usage with consumer.Run
//
// The scheduler implements consumer.Dispatcher: it runs the work consumer.Run
// gives it (the handler with its retry loop and offset bookkeeping) when the
// record is due.
//
//	sched := scheduler.New(scheduler.Config{
//		DueAt:   dueAtFromHeader, // reads x-retry-due-at
//		OnStart: func(_ kafka.Message, late time.Duration) { lateness.Observe(late.Seconds()) },
//	})
//	err := consumer.Run(ctx, consumer.Config{Reader: r, Handler: retry, Dispatcher: sched})
//
// Used alone, give Config.Run and call Add for each record, with Run started
// in its own goroutine.
package scheduler
