// Package events defines the domain events of the reefer order flow and
// their encoding as CloudEvents 1.0 in structured JSON mode.
//
// # The envelope
//
// Every record value is one JSON object:
//
//	{"specversion":"1.0","id":"…","source":"/reefer-manager","type":"OrderCreated",
//	 "time":"2025-01-02T03:04:05Z","subject":"order-1","datacontenttype":"application/json",
//	 "data":{"orderID":"order-1", …}}
//
// The envelope says what the event is, who emitted it and when, so a
// consumer can route and deduplicate without knowing the payload; data is
// the payload. The subject is the order id.
//
// # Deterministic ids
//
// [ID] derives the event id from the subject and the type. Kafka delivers
// at least once, and a service that crashes after emitting but before
// committing emits the same event again: with a deterministic id both copies
// carry the same id and a consumer drops the second.
//
// # Strict decoding, permanent errors
//
// A record that is not valid UTF-8, is larger than [MaxSize], is not a JSON
// object, misses a required field, carries a field of the wrong type, or has
// a type nobody knows will never decode, however often it is retried. The
// decoders therefore return a *failure.Error of class Permanent (reason
// "decode" or "validation") that wraps a *[DecodeError] naming the field and
// the problem, so the record goes straight to the dead-letter topic with a
// message an operator can act on.
//
// Decoding is strict on purpose: unknown payload fields are rejected (a
// producer that sends "quantity" as "qty" should hear about it, not have the
// order silently allocated with quantity 0), and so are duplicate keys.
// CloudEvents extension attributes (lowercase alphanumeric names such as
// "traceparent") are kept in [Envelope.Extensions].
//
// The decoder is fuzzed (FuzzDecode): it never panics, and whatever it
// accepts re-encodes to an event it accepts again unchanged.
//
// Duplicate keys are invisible to encoding/json's Unmarshal, so objects are
// split into their members by hand. A well-formed object, nearly every
// record, takes a fast path (validate with json.Valid, compact, cut at the
// member boundaries); anything else is read token by token, which names
// the first problem and where it is. FuzzObjectFields checks that both
// paths agree on every input the fast one accepts.
package events
