// Package baseline re-creates, for the benchmark, the ways of retrying that
// the pattern is measured against. Each is written the way its users write
// it, on the same kafka-go client, database and inventory client as the
// services, so that the only difference measured is where the waiting
// happens.
//
//   - [SleepingRetry]: the original implementation's approach. When an
//     attempt fails, the listener sleeps attempt × delay and calls the
//     dependency again. While it sleeps, nothing else on its partition moves.
//   - [WatermillRetry]: in-process exponential retries as Go messaging
//     middleware offers them: watermill's Retry middleware around the
//     handler. It sleeps in the handler too, only with a better curve.
//   - [PauseUntilDue]: the popular framework's way to delay a retry record
//     (Spring Kafka's back-off aware listener): pause the partition until
//     its head record is due, then resume. Nothing sleeps on a thread that
//     matters, but a partition is a queue: a record due in 100 ms waits
//     behind an earlier one due in 5 s (head-of-line blocking).
//
// [PartitionListeners] drives them: one listener per partition, each
// handing one record at a time to its handler, as Spring Kafka's container
// with one consumer thread per partition and watermill-kafka's subscriber
// (one unacknowledged message per partition) do.
package baseline
