// Package failure classifies errors as transient, permanent or config, the
// one decision the retry + dead-letter pattern turns on.
//
// # Why classify
//
// A transient failure (a timeout, a refused connection, a 503 from an
// overloaded inventory service) may succeed if the same record is tried again
// later, so the record goes to the retry topic. A permanent failure (a record
// that does not decode, an order the inventory rejects with 400 or 422) will
// fail the same way every time: retrying only delays it and burns capacity,
// so it goes straight to the dead-letter topic, where an operator can look at
// it, fix it and redrive it.
//
// A config failure (an inventory answering 401, 403 or a redirect, a
// database refusing the credentials or missing a table, a topic the
// broker does not authorise) is neither: the record is fine and so is the
// dependency, but the deployment is wrong, and every record fails alike
// until an operator fixes it. Dead-lettering each one as permanent would
// empty the input into the dead-letter topic during a credential
// rotation; so config failures are retried with back-off like transient
// ones (a record is dead-lettered only when its attempts run out, reason
// max-attempts), counted apart so that an alert names the cause, and
// they open a circuit breaker.
//
// # How
//
// Code that knows the nature of a failure says so where it happens, with
// [NewTransient] or [NewPermanent] and a short reason ("http-503",
// "decode"). The *[Error] travels up wrapped in context (fmt.Errorf with %w)
// and [ClassOf], [ReasonOf] and [RetryAfterOf] find it again at the edge
// that routes the record. The error also captures the stack where it was
// created, because the dead-letter record carries one for the operator.
//
// [FromHTTPStatus] and [FromTransport] translate the two ways an HTTP call
// fails: a status code (only 2xx is success; 3xx, 401, 403 and 407 are
// config; 5xx, 408 and 429 are transient; other 4xx are permanent) and an
// error from http.Client.Do (timeouts, refused and reset connections, EOF
// are transient). [FromProducer] translates a Kafka producer's error: a
// record too large or invalid is permanent, an unauthorised write or an
// unknown topic is config, the rest transient.
//
// # Unknown errors are transient
//
// An error that carries no classification is treated as transient. Guessing
// "permanent" would send a record that might have succeeded to the
// dead-letter topic at the first hiccup of some unforeseen kind; guessing
// "transient" costs at most a bounded number of retries (the pattern's
// maximum attempts) before the record lands in the dead-letter topic anyway,
// with its error attached. Permanence is therefore always an explicit
// statement by code that knows.
//
// context.Canceled is not a failure at all: it means the service is
// shutting down. [FromTransport] returns it unchanged and consumers should
// check for it before classifying, so the record is left uncommitted and
// processed again after the restart.
package failure
