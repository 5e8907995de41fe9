// Package tracing follows one record across every hop of the retry
// pattern with OpenTelemetry spans, and says what each attempt did.
//
// A stage wraps its handler with [Process]: each record runs in a
// consumer span ("process orders", kind consumer) that continues the W3C
// trace context of the record's traceparent header and carries the
// messaging attributes of the OpenTelemetry semantic conventions
// v1.43.0 for Kafka (messaging.system, messaging.destination.name,
// messaging.destination.partition.id, messaging.kafka.offset,
// messaging.consumer.group.name, messaging.kafka.message.key,
// messaging.operation.type process). The conventions' messaging
// attributes are still in development; this is new instrumentation with
// no older attributes to keep, so it emits the current ones only, as the
// migration advice allows (no OTEL_SEMCONV_STABILITY_OPT_IN needed).
//
// Every write of the pattern ([Send]: events, the hand-off to the retry
// topic, the dead letter, a redrive) runs in a producer span ("send
// order-retries") whose context replaces the record's traceparent. So
// attempt 2 is a child of the hand-off written by attempt 1, and one
// trace holds the whole story: attempt 1 -> send order-retries -> (the
// wait) -> attempt 2 -> ... -> dead letter.
//
// The OpenTelemetry specification has no retry attributes yet
// (open-telemetry/opentelemetry-specification#1306), so the pattern's
// own live in the kafkaretry.* namespace:
//
//	kafkaretry.attempt              this attempt's number, 1 for the first
//	kafkaretry.route                where the record went: retry, dead-letter, allocated, ...
//	kafkaretry.error.class          transient, permanent or config (a failed attempt)
//	kafkaretry.dead_letter.reason   max-attempts, permanent-error, poison, oversize
//	kafkaretry.retry.delay_ms       the back-off before the next attempt (route retry)
//	kafkaretry.redrive.count        how many times dlq redrove the record
//
// A failed attempt's span also writes its own context to the
// x-retry-link header of the record it hands off, and the next attempt's
// span links to it (link attribute kafkaretry.link = previous-attempt):
// a trace viewer jumps from attempt N+1 to attempt N even when a sampler
// or a redrive cut the parent chain.
//
// A malformed traceparent never fails a record: it is ignored, and the
// record starts a new trace, as one without a traceparent does.
//
// A nil TracerProvider means the no-op one: no span is recorded, and a
// traceparent that came in still goes out unchanged.
package tracing
