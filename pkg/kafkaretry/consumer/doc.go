// Package consumer runs the fetch → process → commit loop of a Kafka
// consumer-group member over a kafka-go Reader, without losing a record and
// without processing records one at a time behind each other.
//
// # Fetch, process, then commit
//
// kafka-go's Reader.ReadMessage commits a record's offset as it returns it,
// before the application has done anything with it: a crash right then loses
// the record. [Run] uses FetchMessage and commits only records whose
// [Handler] returned nil, meaning their outcome is acknowledged by the broker
// (the success events, or the retry or dead-letter record, are written). The
// [Config.CommitBeforeProcessing] switch reproduces the naive order for
// teaching: commit at fetch, then process. Its loss window is the time
// between the commit and the hand-off, for every fetched record: a crash
// there moves the group past records nobody finished.
//
// # Concurrency with per-key order: lanes
//
// Processing one record at a time makes the input rate equal to 1/latency of
// the slowest dependency. Processing all records freely in parallel would
// reorder events of the same order (an update overtaking its create). The
// default [Dispatcher], [KeyLanes], is the middle ground: N lanes, each a FIFO
// with one worker, and a record goes to lane hash(key) mod N. Records with the
// same key (the order id) stay in fetch order; different keys run in
// parallel, up to N at a time ([Config.MaxInFlight]). When a lane is full,
// Dispatch blocks and the fetch loop pauses: backpressure instead of
// unbounded memory, and never a dropped record.
//
// # Memory: a bound in bytes
//
// Counting records is not enough to bound memory: ten thousand 2 KiB
// retries are 20 MiB, ten thousand 100 KiB ones 1 GiB. Run therefore also
// holds records against [Config.MaxPendingBytes]: each fetched record
// counts [RecordSize] (key, value, headers and [RecordOverhead]) from its
// fetch until it finished, and a finished record's entry in the offset
// window counts until the window moves past it. When the budget is full
// the fetch loop waits for records to finish, exactly as with a full lane:
// back-pressure, never a dropped record. A record larger than the whole
// budget is taken when nothing else is held, so it runs alone instead of
// never. Held records are also kept compact: kafka-go decodes each header
// key and value into allocations of their own; Run copies the key, value
// and header values into one allocation and the header keys into one
// string, which saves about 15% per held retry record.
//
// # Committing out-of-order completions
//
// With concurrency, records finish out of order. Run tracks them with an
// offsets.Tracker per topic and commits, every [Config.CommitInterval], only
// the contiguous prefix of finished offsets per partition, so a crash
// re-delivers unfinished work instead of skipping it (see package offsets).
// Every commit carries a deadline ([Config.CommitTimeout]), and a failed
// commit is retried at the next interval.
//
// # When the handler fails
//
// A Handler error means the hand-off itself failed, typically because the
// broker is unreachable. There is nowhere to hand the record to, so Run calls
// the handler again for the same record with a short capped backoff, logs
// each failure, and does not commit past it. (Business failures, such as the
// inventory service answering 503, are not handler errors: the handler sends
// the record to the retry topic and returns nil.)
//
// # Shutdown
//
// When ctx is cancelled Run stops fetching, closes the dispatcher (records
// not yet started are dropped; they were never committed, so they come back
// after a restart), lets running handlers finish with a context that the
// shutdown signal does not cancel (bounded by [Config.DrainTimeout]), commits
// what finished and returns. Close the kafka-go Reader only after Run
// returns: a commit racing with Close can block forever.
//
// # Rebalances
//
// A Reader with a GroupID hides rebalances. When a partition comes back after
// a rebalance, the reader re-delivers from the group's committed offset; the
// tracker notices the lower offset and restarts that partition's bookkeeping.
// Records of a partition that moved to another member may still finish here
// and be committed; the broker accepts such commits from a current group
// member, so this can only move the group's position back (duplicates, which
// idempotent handlers absorb), never past an unfinished record.
//
// # Usage
//
//	r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, GroupID: "reefer-manager", Topic: "orders"})
//	err := consumer.Run(ctx, consumer.Config{
//		Reader:      r,
//		Handler:     handle, // returns nil once the outcome is acknowledged
//		MaxInFlight: 64,
//		Log:         log,
//	})
//	closeErr := r.Close() // after Run returned
package consumer
