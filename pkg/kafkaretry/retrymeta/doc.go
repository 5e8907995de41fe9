// Package retrymeta reads and writes the headers that carry a record's
// retry history on the order-retries and order-dead-letter topics.
//
// # Why headers and not the payload
//
// A retried or dead-lettered record keeps the original key and value byte
// for byte. The value is the producer's event: wrapping it in a retry
// envelope would change it, force every consumer to unwrap it, and make a
// redrive (publishing the record back to its original topic) a
// transformation instead of a copy. Headers travel with the record and are
// ignored by consumers that do not care, so the retry history goes there:
// how many attempts failed (x-retry-attempt), when the next may start
// (x-retry-due-at), why the last one failed (x-error-class,
// x-error-message), where the record came from (x-original-topic,
// -partition, -offset, -timestamp) and, on the dead-letter topic, why it
// was parked (x-dlq-reason) and the stack of the failure (x-error-stack).
//
// # Why replace, not append
//
// Kafka headers are a list and allow duplicate keys. A naive retry hop
// appends its headers, so after five hops a record carries five error
// messages and five stacks, and grows until it exceeds the broker's maximum
// message size, at which point it cannot even be dead-lettered. [Apply]
// therefore removes every header this package owns and writes the current
// values once: the record has the same set of headers after the first hop
// and after the hundredth. The history that matters survives as values:
// the attempt count, the first and last failure times. Error messages and
// stacks are capped (1 KiB and 4 KiB) on a UTF-8 boundary with a visible
// marker, so a huge error cannot blow the record up either.
//
// All other headers, the W3C traceparent in particular, are kept in order,
// so a trace follows the record through every hop.
//
// # Lenient about absence, strict about garbage
//
// [Parse] accepts missing headers (a record on its first failure has none)
// but rejects malformed ones with an error naming the header and the value:
// a retry record whose due time cannot be read must not be retried at a
// guessed time. Such a record is poison; the error is permanent with reason
// "poison-headers", so it goes to the dead-letter topic.
package retrymeta
