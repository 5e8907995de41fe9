package handoff

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/reeferdlq/reefer-dlq/pkg/reefer/allocation"
	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/backoff"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/events"
	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/failure"
	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/retrymeta"
)

// Writer writes records to Kafka. *kafka.Writer satisfies it when its
// Topic field is empty, so that each message names its own topic.
//
// WriteMessages must return only once the broker has acknowledged every
// message (kafka-go's default, synchronous mode), or with an error.
type Writer interface {
	WriteMessages(ctx context.Context, msgs ...kafka.Message) error
}

// Topics names the topics a Router writes to.
type Topics struct {
	Orders     string // ContainerAllocated, OrderRejected
	Containers string // ContainerAssignedToOrder
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
	RouteAllocated  Route = "allocated"   // success events written
	RouteRejected   Route = "rejected"    // OrderRejected written
	RouteRetry      Route = "retry"       // forwarded to the retry topic
	RouteDeadLetter Route = "dead-letter" // forwarded to the dead-letter topic
	RouteSkipped    Route = "skipped"     // not an order to allocate, or of a stale chain; nothing written
)

// Decision describes what a Router did with one record, for metrics and
// logs. Only the fields that apply to the Route are set.
type Decision struct {
	Route Route
	// OrderID is the order the record is about, when it could be read.
	OrderID string
	// ContainerID is the allocated reefer (RouteAllocated).
	ContainerID string
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
	// Concluded is set when a record met its order concluded by another
	// chain in the Processor's Ledger: ConclusionAllocated (the route is
	// RouteAllocated: the success events were written again) or
	// ConclusionDeadLettered (RouteSkipped: nothing written).
	Concluded string
	// Released is the reefer a dead-lettered order gave back to the pool,
	// Quarantined the one it took out of the pool instead (an inventory
	// 409) (RouteDeadLetter, with a Ledger).
	Released    string
	Quarantined string
}

// Router writes the records that conclude one input record. Create it
// with a struct literal; every field but Now is required, and Validate
// checks them. A Router is safe for concurrent use when its Writer is.
type Router struct {
	// Writer receives one WriteMessages call per outcome.
	Writer Writer
	Topics Topics
	// Source is the CloudEvents source of the events the Router emits,
	// for example "/reefer-dlq/reefer-manager".
	Source string
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
}

// Validate reports every missing or invalid field.
func (r *Router) Validate() error {
	var errs []error
	if r.Writer == nil {
		errs = append(errs, errors.New("missing Writer"))
	}
	for _, t := range []struct{ name, topic string }{
		{"Topics.Orders", r.Topics.Orders}, {"Topics.Containers", r.Topics.Containers},
		{"Topics.Retry", r.Topics.Retry}, {"Topics.DeadLetter", r.Topics.DeadLetter},
	} {
		if t.topic == "" {
			errs = append(errs, fmt.Errorf("empty %s", t.name))
		}
	}
	if r.Source == "" {
		errs = append(errs, errors.New("empty Source"))
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

// Emit writes the events of a conclusive allocation result: for Allocated,
// ContainerAllocated on the orders topic and ContainerAssignedToOrder on
// the containers topic (one WriteMessages call); for Rejected,
// OrderRejected on the orders topic. A traceparent header of in is copied
// to every event.
func (r *Router) Emit(ctx context.Context, in kafka.Message, res allocation.Result) (Decision, error) {
	now := r.now()
	var (
		msgs []kafka.Message
		d    Decision
		err  error
	)
	switch res.Outcome {
	case allocation.Allocated:
		d = Decision{Route: RouteAllocated, OrderID: res.OrderID, ContainerID: res.ContainerID}
		msgs, err = r.allocatedMessages(in, res, now)
	case allocation.Rejected:
		d = Decision{Route: RouteRejected, OrderID: res.OrderID}
		msgs, err = r.rejectedMessages(in, res, now)
	default:
		return Decision{}, fmt.Errorf("emit order %s: unknown outcome %q", res.OrderID, res.Outcome)
	}
	if err != nil {
		return d, fmt.Errorf("emit order %s: %w", res.OrderID, err)
	}
	if err := r.write(ctx, r.Writer, msgs...); err != nil {
		return d, fmt.Errorf("emit %s events of order %s: %w", res.Outcome, res.OrderID, err)
	}
	return d, nil
}

func (r *Router) allocatedMessages(in kafka.Message, res allocation.Result, now time.Time) ([]kafka.Message, error) {
	allocated, err := r.event(in, r.Topics.Orders, res.OrderID, events.TypeContainerAllocated, res.OrderID,
		events.ContainerAllocated{OrderID: res.OrderID, ContainerID: res.ContainerID}, now)
	if err != nil {
		return nil, err
	}
	assigned, err := r.event(in, r.Topics.Containers, res.ContainerID, events.TypeContainerAssignedToOrder, res.OrderID,
		events.ContainerAssignedToOrder{ContainerID: res.ContainerID, OrderID: res.OrderID}, now)
	if err != nil {
		return nil, err
	}
	return []kafka.Message{allocated, assigned}, nil
}

func (r *Router) rejectedMessages(in kafka.Message, res allocation.Result, now time.Time) ([]kafka.Message, error) {
	rejected, err := r.event(in, r.Topics.Orders, res.OrderID, events.TypeOrderRejected, res.OrderID,
		events.OrderRejected{OrderID: res.OrderID, Reason: res.Reason}, now)
	if err != nil {
		return nil, err
	}
	return []kafka.Message{rejected}, nil
}

// event builds one CloudEvents record. The subject is always the order id,
// so the event id (derived from subject and type) is the same however
// often the order is processed.
func (r *Router) event(in kafka.Message, topic, key, eventType, orderID string, data any, now time.Time) (kafka.Message, error) {
	env, err := events.New(r.Source, eventType, orderID, data, now)
	if err != nil {
		return kafka.Message{}, fmt.Errorf("build %s: %w", eventType, err)
	}
	value, err := events.Encode(env)
	if err != nil {
		return kafka.Message{}, fmt.Errorf("encode %s: %w", eventType, err)
	}
	headers := []kafka.Header{{Key: contentTypeHeader, Value: []byte(structuredContentType)}}
	if tp, ok := retrymeta.Get(in.Headers, retrymeta.HeaderTraceParent); ok {
		headers = append(headers, kafka.Header{Key: retrymeta.HeaderTraceParent, Value: []byte(tp)})
	}
	return kafka.Message{Topic: topic, Key: []byte(key), Value: value, Headers: headers}, nil
}

// The CloudEvents Kafka binding marks a structured-mode record with this
// content type, so a consumer can tell it from a binary-mode one.
const (
	contentTypeHeader     = "content-type"
	structuredContentType = "application/cloudevents+json; charset=UTF-8"
)

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
	return r.planFailure(in, prev, err).write(ctx)
}

// failurePlan is a decided but not yet written failure hand-off, so that
// the Processor can consult its Ledger between deciding and writing.
type failurePlan struct {
	r        *Router
	in       kafka.Message
	decision Decision
	topic    string
	meta     retrymeta.Meta
}

func (p failurePlan) write(ctx context.Context) (Decision, error) {
	return p.r.forward(ctx, p.in, p.decision, p.topic, p.meta)
}

// planFailure decides where a failed record goes (see Fail); err is not nil.
func (r *Router) planFailure(in kafka.Message, prev retrymeta.Meta, err error) failurePlan {
	now := r.now()
	meta := r.failureMeta(in, prev, err, now)
	d := Decision{Attempt: meta.Attempt, Err: err}

	switch {
	case meta.ErrorClass == failure.Permanent:
		return r.deadLetterPlan(in, prev, err, retrymeta.PermanentError)
	case meta.Attempt >= r.MaxAttempts:
		return r.deadLetterPlan(in, prev, err, retrymeta.MaxAttempts)
	}
	d.Route = RouteRetry
	d.Delay = r.delay(prev, meta.Attempt, err)
	d.DueAt = now.Add(d.Delay)
	meta.DueAt = d.DueAt
	return failurePlan{r: r, in: in, decision: d, topic: r.Topics.Retry, meta: meta}
}

// deadLetterPlan is the dead letter of a failed record, with reason.
func (r *Router) deadLetterPlan(in kafka.Message, prev retrymeta.Meta, err error, reason retrymeta.Reason) failurePlan {
	now := r.now()
	meta := r.failureMeta(in, prev, err, now)
	d := Decision{Route: RouteDeadLetter, Reason: reason, Attempt: meta.Attempt, Err: err}
	return failurePlan{r: r, in: in, decision: d, topic: r.Topics.DeadLetter, meta: deadLetter(meta, reason, err, now)}
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
	return r.forward(ctx, in, d, r.Topics.DeadLetter, deadLetter(meta, retrymeta.Poison, err, now))
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
// out. The input's other headers (traceparent among them) travel along.
//
// A record that retrying cannot write does not block its partition: too
// large for topic, it is dead-lettered as oversize; refused by the retry
// topic as invalid, it is dead-lettered as permanent-error. The returned
// Decision then says where it really went.
func (r *Router) forward(ctx context.Context, in kafka.Message, d Decision, topic string, meta retrymeta.Meta) (Decision, error) {
	out := record(in, topic, meta)
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
		d = Decision{Route: RouteDeadLetter, Reason: retrymeta.PermanentError, OrderID: d.OrderID, Attempt: d.Attempt, Err: err}
		return r.forward(ctx, in, d, r.Topics.DeadLetter, deadLetter(m, retrymeta.PermanentError, err, now))
	}
	return d, fmt.Errorf("hand off record %s to %s: %w", coordinates(in), topic, err)
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
	d = Decision{Route: RouteDeadLetter, Reason: retrymeta.Oversize, OrderID: d.OrderID, Attempt: d.Attempt, Err: cmpErr(d.Err, tooLarge)}

	topic := r.Topics.DeadLetter
	out := record(in, topic, m)
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
		return d, fmt.Errorf("dead-letter oversize record %s (%v) to %s: %w", coordinates(in), tooLarge, topic, err)
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
	err := w.WriteMessages(ctx, msgs...)
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
