package handoff

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"
	"go.opentelemetry.io/otel/trace"

	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/backoff"
	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/failure"
	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/retrymeta"
	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/tracing"
)

// Writer writes records to Kafka. *kafka.Writer satisfies it when its
// Topic field is empty, so that each message names its own topic.
//
// WriteMessages must return only once the broker has acknowledged every
// message (kafka-go's default, synchronous mode), or with an error.
type Writer interface {
	WriteMessages(ctx context.Context, msgs ...kafka.Message) error
}

// Topics names the topics a Router forwards failed records to.
type Topics struct {
	Retry      string // failed records that will be tried again
	DeadLetter string // failed records that will not
}

// minMaxMessageBytes is the smallest max.message.bytes a Router accepts:
// the retry and dead-letter headers (message and stack capped at 1 and 4
// KiB) must fit with room to spare.
const minMaxMessageBytes = 16 << 10

// Route says where a record went.
type Route string

// The routes a record can take. Every processed record takes exactly one.
const (
	RouteAllocated  Route = "allocated"   // success records written (the handler's business outcome)
	RouteRejected   Route = "rejected"    // a business refusal written (the handler's business outcome)
	RouteRetry      Route = "retry"       // forwarded to the retry topic
	RouteDeadLetter Route = "dead-letter" // forwarded to the dead-letter topic
	RouteSkipped    Route = "skipped"     // nothing to do for this record; nothing written
	RouteDone       Route = "done"        // a kafkaretry.Handler succeeded; what it wrote is its own
)

// Decision describes what a Router did with one record, for metrics and
// logs. Only the fields that apply to the Route are set. A handler that
// needs more (the business key, what it concluded) embeds it in a
// Decision of its own.
type Decision struct {
	Route Route
	// Reason is why the record was dead-lettered (RouteDeadLetter).
	Reason retrymeta.Reason
	// Attempt is the number of failed attempts so far, this one included
	// (RouteRetry and RouteDeadLetter).
	Attempt int
	// Delay and DueAt say when the next attempt may start (RouteRetry).
	Delay time.Duration
	DueAt time.Time
	// Err is the processing failure that was handed off (RouteRetry and
	// RouteDeadLetter).
	Err error
}

// Router writes the records that conclude one input record whose
// processing failed: to the retry topic or the dead-letter topic; and,
// through [Router.Write], the records of a success, so that every write
// is watched by the same [Blockage]. Create it with a struct literal;
// Writer, Topics, Policy and MaxAttempts are required, and Validate
// checks them. A Router is safe for concurrent use when its Writer is.
type Router struct {
	// Writer receives one WriteMessages call per outcome.
	Writer Writer
	Topics Topics
	// Policy computes the delay before the next attempt.
	Policy backoff.Policy
	// MaxAttempts is the number of failed attempts after which a transient
	// failure is dead-lettered (reason max-attempts) instead of retried.
	// With 5, the fifth failure of the same order is the last.
	MaxAttempts int
	// Now returns the current time; nil means time.Now. Inject a fixed
	// clock in tests.
	Now func() time.Time

	// MaxMessageBytes is each topic's max.message.bytes, the largest
	// record batch the broker accepts on it; a topic not in the map has
	// retrymeta.DefaultMaxMessageBytes (Kafka's default). The Router
	// checks every forwarded record against it before writing: a record
	// too large for the retry topic, or for the dead-letter topic, is
	// dead-lettered with reason oversize (see Fail) instead of being
	// refused by the broker on every retry, which would block its
	// partition for good.
	MaxMessageBytes map[string]int
	// DeadLetterWriter, when set, writes the dead letters; nil means
	// Writer. The dead-letter topic should accept larger records than the
	// others (a dead letter is its record plus up to ~6 KiB of headers);
	// give it its own writer so that each writer's BatchBytes can match
	// its topics' max.message.bytes (see retrymeta.RecordSize).
	DeadLetterWriter Writer
	// Blockage, when set, learns the outcome of every write, so that a
	// topic the Router cannot write to for a reason retrying cannot fix
	// (see Blockage) is reported instead of retried in silence.
	Blockage *Blockage
	// Tracing, when set, gives every write a producer span whose context
	// replaces the record's traceparent, says on the attempt's span (the
	// one in the ctx of Fail, Poison and Plan.Write) how it failed, and
	// writes that span's context to x-retry-link (see package tracing).
	// nil: no spans; a traceparent travels unchanged.
	Tracing trace.TracerProvider
}

// Validate reports every missing or invalid field.
func (r *Router) Validate() error {
	var errs []error
	if r.Writer == nil {
		errs = append(errs, errors.New("missing Writer"))
	}
	for _, t := range []struct{ name, topic string }{
		{"Topics.Retry", r.Topics.Retry}, {"Topics.DeadLetter", r.Topics.DeadLetter},
	} {
		if t.topic == "" {
			errs = append(errs, fmt.Errorf("empty %s", t.name))
		}
	}
	if r.MaxAttempts < 1 {
		errs = append(errs, fmt.Errorf("want MaxAttempts >= 1, got %d", r.MaxAttempts))
	}
	if err := r.Policy.Validate(); err != nil {
		errs = append(errs, err)
	}
	for topic, n := range r.MaxMessageBytes {
		if n < minMaxMessageBytes {
			errs = append(errs, fmt.Errorf("MaxMessageBytes[%q] = %d: want at least %d (a dead letter's headers alone take up to ~6 KiB)", topic, n, minMaxMessageBytes))
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("handoff router: %w", errors.Join(errs...))
}

// Write writes the records of a success (the handler's own outcome
// records) with one WriteMessages call of Writer, and tells the Blockage
// how it went. The error is classified (failure.FromProducer): nil means
// the broker acknowledged every record.
func (r *Router) Write(ctx context.Context, msgs ...kafka.Message) error {
	return r.write(ctx, r.Writer, msgs...)
}

// Fail hands a record whose processing failed to the retry topic or the
// dead-letter topic, depending on the error's class and the attempts used:
//
//   - permanent error: dead letter, reason permanent-error;
//   - transient error and prev.Attempt+1 >= MaxAttempts: dead letter,
//     reason max-attempts;
//   - otherwise: retry topic, due after the policy's delay for this
//     attempt (or the server's Retry-After when larger).
//
// prev is the retry metadata the record arrived with (the zero Meta for a
// record read from the orders topic). The record's key and value are
// forwarded unchanged, with one exception: a record that is too large,
// with its new headers, for the topic it must go to (MaxMessageBytes, or
// the broker's refusal) is dead-lettered with reason oversize, carrying
// x-dlq-original-size and as much of its value as the dead-letter topic
// accepts; and a record the retry topic refuses as invalid is
// dead-lettered with reason permanent-error. Either way the Decision says
// so, and the record's partition moves on.
func (r *Router) Fail(ctx context.Context, in kafka.Message, prev retrymeta.Meta, err error) (Decision, error) {
	if err == nil {
		return Decision{}, errors.New("hand off failure: nil error")
	}
	return r.Plan(in, prev, err).Write(ctx)
}

// Plan is a decided but not yet written failure hand-off, so that a
// caller can consult its own state (a ledger of conclusions, say) between
// deciding and writing. Its Decision says where the record would go.
type Plan struct {
	Decision Decision
	r        *Router
	in       kafka.Message
	topic    string
	meta     retrymeta.Meta
}

// Write carries the plan out, as [Router.Fail] would have.
func (p Plan) Write(ctx context.Context) (Decision, error) {
	return p.r.traced(ctx)(p.r.forward(ctx, p.in, p.Decision, p.topic, p.meta))
}

// Plan decides where a failed record goes (see Fail) without writing it;
// err must not be nil.
func (r *Router) Plan(in kafka.Message, prev retrymeta.Meta, err error) Plan {
	now := r.now()
	meta := r.failureMeta(in, prev, err, now)
	d := Decision{Attempt: meta.Attempt, Err: err}

	switch {
	case meta.ErrorClass == failure.Permanent:
		return r.PlanDeadLetter(in, prev, err, retrymeta.PermanentError)
	case meta.Attempt >= r.MaxAttempts:
		return r.PlanDeadLetter(in, prev, err, retrymeta.MaxAttempts)
	}
	d.Route = RouteRetry
	d.Delay = r.delay(prev, meta.Attempt, err)
	d.DueAt = now.Add(d.Delay)
	meta.DueAt = d.DueAt
	return Plan{r: r, in: in, Decision: d, topic: r.Topics.Retry, meta: meta}
}

// PlanDeadLetter is the dead letter of a failed record, with reason,
// whatever its class and attempts.
func (r *Router) PlanDeadLetter(in kafka.Message, prev retrymeta.Meta, err error, reason retrymeta.Reason) Plan {
	now := r.now()
	meta := r.failureMeta(in, prev, err, now)
	d := Decision{Route: RouteDeadLetter, Reason: reason, Attempt: meta.Attempt, Err: err}
	return Plan{r: r, in: in, Decision: d, topic: r.Topics.DeadLetter, meta: deadLetter(meta, reason, err, now)}
}

// Poison dead-letters a record that cannot be processed at all: its value
// does not decode, or its retry headers cannot be read. err says what is
// wrong; it is recorded as a permanent error whatever its class. When the
// headers are what cannot be read, pass the zero Meta: the record's own
// topic, partition and offset then become its original coordinates.
func (r *Router) Poison(ctx context.Context, in kafka.Message, prev retrymeta.Meta, err error) (Decision, error) {
	if err == nil {
		return Decision{}, errors.New("hand off poison record: nil error")
	}
	now := r.now()
	meta := r.failureMeta(in, prev, err, now)
	meta.ErrorClass = failure.Permanent
	d := Decision{Route: RouteDeadLetter, Reason: retrymeta.Poison, Attempt: meta.Attempt, Err: err}
	return r.traced(ctx)(r.forward(ctx, in, d, r.Topics.DeadLetter, deadLetter(meta, retrymeta.Poison, err, now)))
}

// traced returns a pass-through of a hand-off's result that first tells
// the attempt's span in ctx how the attempt ended, once the hand-off is
// written.
func (r *Router) traced(ctx context.Context) func(Decision, error) (Decision, error) {
	return func(d Decision, err error) (Decision, error) {
		if err == nil {
			class := ""
			if d.Err != nil {
				class = string(failure.ClassOf(d.Err))
			}
			tracing.Attempt(ctx, string(d.Route), class, string(d.Reason), d.Delay, d.Err)
		}
		return d, err
	}
}

// failureMeta is the retry metadata after one more failed attempt. It
// starts from prev so that what earlier hops recorded (first failure,
// original coordinates, redrive count) survives.
func (r *Router) failureMeta(in kafka.Message, prev retrymeta.Meta, err error, now time.Time) retrymeta.Meta {
	m := prev
	m.Attempt = prev.Attempt + 1
	if m.FirstFailureAt.IsZero() {
		m.FirstFailureAt = now
	}
	m.LastFailureAt = now
	m.DueAt = now
	m.ErrorClass = failure.ClassOf(err)
	m.ErrorMessage = err.Error()
	if m.OriginalTopic == "" {
		m.OriginalTopic = in.Topic
		m.OriginalPartition = in.Partition
		m.OriginalOffset = in.Offset
		m.OriginalTimestamp = in.Time
	}
	// A redriven record still carries its earlier dead-letter headers;
	// they describe the previous trip, not this one.
	m.ErrorStack = ""
	m.DLQReason = ""
	m.DeadLetteredAt = time.Time{}
	return m
}

// delay is the wait before the next attempt. The previous delay, which the
// decorrelated strategy grows from, is what the last hop recorded: due-at
// minus last failure.
func (r *Router) delay(prev retrymeta.Meta, attempt int, err error) time.Duration {
	var prevDelay time.Duration
	if prev.Attempt > 0 && !prev.DueAt.IsZero() && !prev.LastFailureAt.IsZero() {
		prevDelay = max(prev.DueAt.Sub(prev.LastFailureAt), 0)
	}
	return r.Policy.WithRetryAfter(r.Policy.Delay(attempt, prevDelay), failure.RetryAfterOf(err))
}

func deadLetter(m retrymeta.Meta, reason retrymeta.Reason, err error, now time.Time) retrymeta.Meta {
	m.DLQReason = reason
	m.DeadLetteredAt = now
	m.ErrorStack = failure.StackOf(err)
	return m
}

// forward writes the input record, key and value untouched, to topic with
// its headers rewritten from meta, and returns d, the decision it carries
// out. The input's other headers travel along; its traceparent is
// replaced by the context of the write's producer span (see Tracing).
//
// A record that retrying cannot write does not block its partition: too
// large for topic, it is dead-lettered as oversize; refused by the retry
// topic as invalid, it is dead-lettered as permanent-error. The returned
// Decision then says where it really went.
func (r *Router) forward(ctx context.Context, in kafka.Message, d Decision, topic string, meta retrymeta.Meta) (Decision, error) {
	out := record(in, topic, meta)
	out.Headers = withRetryLink(ctx, out.Headers)
	err := r.checkSize(out)
	if err == nil {
		err = r.write(ctx, r.writerFor(topic), out)
	}
	switch {
	case err == nil:
		return d, nil
	case failure.ReasonOf(err) == failure.ReasonTooLarge:
		return r.oversize(ctx, in, d, meta, err)
	case topic != r.Topics.DeadLetter && failure.IsPermanent(err):
		now := r.now()
		m := meta
		m.ErrorClass, m.ErrorMessage, m.DueAt = failure.Permanent, err.Error(), time.Time{}
		d = Decision{Route: RouteDeadLetter, Reason: retrymeta.PermanentError, Attempt: d.Attempt, Err: err}
		return r.forward(ctx, in, d, r.Topics.DeadLetter, deadLetter(m, retrymeta.PermanentError, err, now))
	}
	return d, fmt.Errorf("hand off record %s to %s: %w", Coordinates(in), topic, err)
}

// oversize dead-letters a record that is too large for where it had to go
// (tooLarge says why): reason oversize, x-dlq-original-size the size of
// its value, and as much of the value as the dead-letter topic takes. The
// other headers are those of meta: the processing failure it had, its
// attempts, its original coordinates. Should the dead-letter topic refuse
// even that for its size (its real max.message.bytes is below what
// MaxMessageBytes says), the value is dropped and only the headers go.
func (r *Router) oversize(ctx context.Context, in kafka.Message, d Decision, meta retrymeta.Meta, tooLarge error) (Decision, error) {
	m := deadLetter(meta, retrymeta.Oversize, cmpErr(d.Err, tooLarge), r.now())
	m.DueAt = time.Time{}
	m.OriginalSize = len(in.Value)
	d = Decision{Route: RouteDeadLetter, Reason: retrymeta.Oversize, Attempt: d.Attempt, Err: cmpErr(d.Err, tooLarge)}

	topic := r.Topics.DeadLetter
	out := record(in, topic, m)
	out.Headers = withRetryLink(ctx, out.Headers)
	if over := retrymeta.RecordSize(out) - r.maxRecordSize(topic); over > 0 {
		out.Value = out.Value[:max(len(out.Value)-over, 0)]
	}
	w := r.writerFor(topic)
	err := r.write(ctx, w, out)
	if failure.ReasonOf(err) == failure.ReasonTooLarge && len(out.Value) > 0 {
		out.Value = out.Value[:0]
		err = r.write(ctx, w, out)
	}
	if err != nil {
		return d, fmt.Errorf("dead-letter oversize record %s (%v) to %s: %w", Coordinates(in), tooLarge, topic, err)
	}
	return d, nil
}

// cmpErr is the first non-nil error.
func cmpErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// record is the input record, key and value untouched, bound for topic
// with its headers rewritten from meta.
func record(in kafka.Message, topic string, meta retrymeta.Meta) kafka.Message {
	return kafka.Message{
		Topic:   topic,
		Key:     in.Key,
		Value:   in.Value,
		Headers: retrymeta.Apply(in.Headers, meta),
	}
}

// withRetryLink adds x-retry-link, the context of the failed attempt's
// span in ctx, when tracing records it (record has dropped the incoming
// one with the other x-retry-* headers).
func withRetryLink(ctx context.Context, h []kafka.Header) []kafka.Header {
	if tp := tracing.RetryLink(ctx); tp != "" {
		h = append(h, kafka.Header{Key: retrymeta.HeaderRetryLink, Value: []byte(tp)})
	}
	return h
}

// checkSize refuses, before the broker does, a record larger than its
// topic accepts.
func (r *Router) checkSize(msg kafka.Message) error {
	size, limit := retrymeta.RecordSize(msg), r.maxRecordSize(msg.Topic)
	if size <= limit {
		return nil
	}
	return failure.NewPermanent(failure.ReasonTooLarge, fmt.Errorf(
		"record of %d bytes (value %d, %d headers) is above the %d that topic %s takes (max.message.bytes %d)",
		size, len(msg.Value), len(msg.Headers), limit, msg.Topic, limit+retrymeta.RecordBatchOverhead))
}

func (r *Router) maxRecordSize(topic string) int {
	return retrymeta.MaxRecordSize(r.MaxMessageBytes[topic])
}

func (r *Router) writerFor(topic string) Writer {
	if topic == r.Topics.DeadLetter && r.DeadLetterWriter != nil {
		return r.DeadLetterWriter
	}
	return r.Writer
}

// write writes msgs with w, tells the Blockage how it went, and returns
// the error classified (failure.FromProducer).
func (r *Router) write(ctx context.Context, w Writer, msgs ...kafka.Message) error {
	end := tracing.Send(ctx, r.Tracing, msgs)
	err := w.WriteMessages(ctx, msgs...)
	end(err)
	if r.Blockage != nil {
		r.Blockage.observe(msgs, err)
	}
	return failure.FromProducer(err)
}

// now is truncated to milliseconds, the resolution of the time headers, so
// that the Decision and the headers agree exactly.
func (r *Router) now() time.Time {
	now := time.Now
	if r.Now != nil {
		now = r.Now
	}
	return time.UnixMilli(now().UnixMilli()).UTC()
}

// Coordinates names a record in logs and errors: topic/partition@offset.
func Coordinates(m kafka.Message) string {
	return fmt.Sprintf("%s/%d@%d", m.Topic, m.Partition, m.Offset)
}
