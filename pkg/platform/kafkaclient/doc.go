// Package kafkaclient builds every Kafka client of the suite (readers,
// writers, admin calls, readiness checks) from one Config, over
// github.com/segmentio/kafka-go.
//
// One Config means one place for the brokers, the client id, TLS and SASL
// (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512), read from the environment once in a
// service's run function with github.com/caarlos0/env/v11:
//
//	var cfg kafkaclient.Config
//	if err := env.Parse(&cfg); err != nil { ... }
//	if err := cfg.Validate(); err != nil { ... } // names the variable and the accepted form
//	log.Info("kafka", "config", cfg)            // the password is masked
//
// The readers and writers it returns carry defaults chosen for the retry and
// dead-letter pattern rather than kafka-go's:
//   - NewWriter uses the Hash balancer (same key, same partition: the events
//     of one order stay in order), waits for all in-sync replicas
//     (RequireAll), batches for a few milliseconds instead of a second, and
//     never creates topics by accident;
//   - NewReader fetches with MinBytes 1 and a short MaxWait, commits
//     synchronously (CommitMessages returns once the broker has the offset),
//     and starts a new consumer group at the oldest record.
//
// # Committing and closing: the rule
//
// Always give CommitMessages a context with a deadline, and stop the fetch
// loop before calling Close.
//
// Why: with synchronous commits, CommitMessages queues the request for the
// reader's commit goroutine and then waits for its answer. If Close runs at
// the same time, the commit goroutine can exit after the request was queued;
// nobody will ever answer, and a CommitMessages whose context never ends
// blocks forever (the goroutine, and a shutdown waiting on it, hang). The
// same wait happens during a rebalance, until the next generation's commit
// goroutine picks the request up. A deadline turns the hang into an error
// (context.DeadlineExceeded, or io.ErrClosedPipe once the reader is closed)
// that the caller can log and act on: the record was not committed and will
// be redelivered, which at-least-once processing already allows. The tests
// of this package show both the hang and the bounded return.
//
// So a consumer shuts down in this order: stop calling FetchMessage, let
// in-flight records finish, commit what finished with a deadline, then
// Close the reader.
//
// # Lifetimes
//
// A Reader or Writer owns its connections and releases them on Close.
// Transport returns a connection pool the caller owns
// (CloseIdleConnections); Ping and EnsureTopics open and release their own.
package kafkaclient
