package tracing

import (
	"context"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/segmentio/kafka-go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/retrymeta"
)

// ScopeName is the instrumentation scope of the pattern's spans.
const ScopeName = "github.com/reeferdlq/reefer-dlq/pkg/kafkaretry"

// The pattern's own span attributes (see the package documentation).
const (
	AttrAttempt          = attribute.Key("kafkaretry.attempt")
	AttrRoute            = attribute.Key("kafkaretry.route")
	AttrErrorClass       = attribute.Key("kafkaretry.error.class")
	AttrDeadLetterReason = attribute.Key("kafkaretry.dead_letter.reason")
	AttrRetryDelayMs     = attribute.Key("kafkaretry.retry.delay_ms")
	AttrRedriveCount     = attribute.Key("kafkaretry.redrive.count")
	// AttrLink is set on a link to say what it points to.
	AttrLink = attribute.Key("kafkaretry.link")
)

// The values of AttrLink.
const (
	LinkPreviousAttempt = "previous-attempt" // the attempt that failed before this one
	LinkDeadLetter      = "dead-letter"      // the dead letter a redrive copies
)

// propagator is W3C trace context: traceparent and tracestate.
var propagator propagation.TextMapPropagator = propagation.TraceContext{}

// Headers adapts a record's headers to propagation.TextMapCarrier. Set
// replaces every header of the key.
type Headers struct{ H *[]kafka.Header }

// Get returns the first value of key, "" when absent.
func (c Headers) Get(key string) string {
	v, _ := retrymeta.Get(*c.H, key)
	return v
}

// Set replaces the headers of key with one of value.
func (c Headers) Set(key, value string) {
	out := (*c.H)[:0:0]
	for _, h := range *c.H {
		if h.Key != key {
			out = append(out, h)
		}
	}
	*c.H = append(out, kafka.Header{Key: key, Value: []byte(value)})
}

// Keys lists the header keys.
func (c Headers) Keys() []string {
	keys := make([]string, len(*c.H))
	for i, h := range *c.H {
		keys[i] = h.Key
	}
	return keys
}

// Extract returns ctx with the remote span context the record's
// traceparent names; ctx unchanged when it has none or a malformed one.
func Extract(ctx context.Context, msg kafka.Message) context.Context {
	h := msg.Headers
	return propagator.Extract(ctx, Headers{&h})
}

// SpanContext is the span context the record's header key holds (a W3C
// traceparent), invalid when absent or malformed.
func SpanContext(headers []kafka.Header, key string) trace.SpanContext {
	v, ok := retrymeta.Get(headers, key)
	if !ok {
		return trace.SpanContext{}
	}
	h := []kafka.Header{{Key: "traceparent", Value: []byte(v)}}
	return trace.SpanContextFromContext(propagator.Extract(context.Background(), Headers{&h}))
}

// Traceparent formats sc as a W3C traceparent, "" when it is invalid.
func Traceparent(sc trace.SpanContext) string {
	if !sc.IsValid() {
		return ""
	}
	var h []kafka.Header
	propagator.Inject(trace.ContextWithSpanContext(context.Background(), sc), Headers{&h})
	v, _ := retrymeta.Get(h, "traceparent")
	return v
}

func tracer(tp trace.TracerProvider) trace.Tracer {
	if tp == nil {
		tp = noop.NewTracerProvider()
	}
	return tp.Tracer(ScopeName)
}

// Off reports whether tp records nothing for sure: nil or the no-op
// provider. The pattern then skips its tracing work altogether, so that
// tracing off costs nothing but this check.
func Off(tp trace.TracerProvider) bool {
	if tp == nil {
		return true
	}
	_, noOp := tp.(noop.TracerProvider)
	return noOp
}

// Process wraps h so that each call runs in a consumer span of the
// record (see the package documentation); group is the consumer group,
// for messaging.consumer.group.name. When tp is Off, h is returned as it
// is.
func Process[H ~func(context.Context, kafka.Message) error](tp trace.TracerProvider, group string, h H) H {
	if Off(tp) {
		return h
	}
	t := tracer(tp)
	return func(ctx context.Context, msg kafka.Message) error {
		ctx, span := StartProcess(ctx, t, group, msg)
		err := h(ctx, msg)
		if err != nil {
			// The hand-off did not happen: the record will be processed
			// again.
			span.SetStatus(codes.Error, text([]byte(err.Error())))
		}
		span.End()
		return err
	}
}

// StartProcess starts the consumer span of one record: the child of the
// record's traceparent, linked to the failed attempt its x-retry-link
// names.
func StartProcess(ctx context.Context, t trace.Tracer, group string, msg kafka.Message) (context.Context, trace.Span) {
	ctx = Extract(ctx, msg)
	attrs := append(messaging(msg.Topic, semconv.MessagingOperationTypeProcess, "process"),
		semconv.MessagingDestinationPartitionID(strconv.Itoa(msg.Partition)),
		semconv.MessagingKafkaOffset(int(msg.Offset)),
		semconv.MessagingMessageBodySize(len(msg.Value)),
		AttrAttempt.Int(attemptOf(msg.Headers)),
	)
	if group != "" {
		attrs = append(attrs, semconv.MessagingConsumerGroupName(group))
	}
	if len(msg.Key) > 0 {
		attrs = append(attrs, semconv.MessagingKafkaMessageKey(text(msg.Key)))
	}
	if v, ok := retrymeta.Get(msg.Headers, retrymeta.HeaderRedriveCount); ok {
		if n, err := strconv.Atoi(v); err == nil && n > 0 {
			attrs = append(attrs, AttrRedriveCount.Int(n))
		}
	}
	opts := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindConsumer), trace.WithAttributes(attrs...)}
	if prev := SpanContext(msg.Headers, retrymeta.HeaderRetryLink); prev.IsValid() {
		opts = append(opts, trace.WithLinks(trace.Link{SpanContext: prev, Attributes: []attribute.KeyValue{AttrLink.String(LinkPreviousAttempt)}}))
	}
	return t.Start(ctx, "process "+msg.Topic, opts...)
}

// text is b as valid UTF-8: an OTLP string must be, and one bad key or
// error message would otherwise fail the export of its whole batch.
func text(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	return strings.ToValidUTF8(string(b), "\uFFFD")
}

// attemptOf is the number of the attempt a record is about to make: one
// more than the failed attempts its x-retry-attempt counts (1 without
// one, or with an unreadable one).
func attemptOf(h []kafka.Header) int {
	v, ok := retrymeta.Get(h, retrymeta.HeaderAttempt)
	if !ok {
		return 1
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 1
	}
	return n + 1
}

func messaging(topic string, op attribute.KeyValue, name string) []attribute.KeyValue {
	return []attribute.KeyValue{
		semconv.MessagingSystemKafka,
		op,
		semconv.MessagingOperationName(name),
		semconv.MessagingDestinationName(topic),
	}
}

// Send starts one producer span per record of msgs ("send <topic>"),
// each the child of the span in ctx, or, when ctx holds none, of the
// record's own traceparent (the one it copied from the record it
// concludes), and writes each span's context into its record's
// traceparent, replacing the one it had. links are added to every span.
// It returns the end of the spans: call it with the write's error once
// the write returned.
func Send(ctx context.Context, tp trace.TracerProvider, msgs []kafka.Message, links ...trace.Link) (end func(error)) {
	if Off(tp) {
		// A traceparent copied from the input travels unchanged.
		return func(error) {}
	}
	t := tracer(tp)
	inherit := !trace.SpanContextFromContext(ctx).IsValid()
	spans := make([]trace.Span, len(msgs))
	for i := range msgs {
		m := &msgs[i]
		attrs := messaging(m.Topic, semconv.MessagingOperationTypeSend, "send")
		if len(m.Key) > 0 {
			attrs = append(attrs, semconv.MessagingKafkaMessageKey(text(m.Key)))
		}
		if v, ok := retrymeta.Get(m.Headers, retrymeta.HeaderAttempt); ok {
			// The attempt that failed and wrote this hand-off.
			if n, err := strconv.Atoi(v); err == nil && n > 0 {
				attrs = append(attrs, AttrAttempt.Int(n))
			}
		}
		parent := ctx
		if inherit {
			parent = Extract(ctx, *m)
		}
		sctx, span := t.Start(parent, "send "+m.Topic, trace.WithSpanKind(trace.SpanKindProducer),
			trace.WithAttributes(attrs...), trace.WithLinks(links...))
		spans[i] = span
		// The record gets headers of its own: msgs may share them with
		// the record they came from.
		h := append([]kafka.Header(nil), m.Headers...)
		propagator.Inject(sctx, Headers{&h})
		m.Headers = h
	}
	return func(err error) {
		for _, s := range spans {
			if err != nil {
				s.SetStatus(codes.Error, text([]byte(err.Error())))
			}
			s.End()
		}
	}
}

// Attempt says on the span in ctx (the attempt's consumer span) how the
// attempt ended, when it failed: where the record went, why, and, for a
// retry, after which delay. It marks the span as an error: the attempt
// failed, even though its record was handed off.
func Attempt(ctx context.Context, route string, errorClass string, reason string, delay time.Duration, err error) {
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return
	}
	attrs := []attribute.KeyValue{AttrRoute.String(route)}
	if errorClass != "" {
		attrs = append(attrs, AttrErrorClass.String(errorClass), semconv.ErrorTypeKey.String(errorClass))
	}
	if reason != "" {
		attrs = append(attrs, AttrDeadLetterReason.String(reason))
	}
	if delay > 0 {
		attrs = append(attrs, AttrRetryDelayMs.Int64(delay.Milliseconds()))
	}
	span.SetAttributes(attrs...)
	msg := route
	if err != nil {
		msg = err.Error()
	}
	span.SetStatus(codes.Error, text([]byte(msg)))
}

// Route says on the span in ctx where a record that did not fail went
// (allocated, rejected, skipped, done).
func Route(ctx context.Context, route string) {
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		span.SetAttributes(AttrRoute.String(route))
	}
}

// RetryLink is the x-retry-link value for a record that the attempt in
// ctx hands off: its span's traceparent, "" when the span records
// nothing (tracing off: the header is not written).
func RetryLink(ctx context.Context) string {
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return ""
	}
	return Traceparent(span.SpanContext())
}

// Redrive starts the producer span of a redrive ("redrive <topic>"): the
// copy of a dead letter going back to the pipeline, sent by a person's
// command hours after the failure. It starts a new trace, linked to the
// dead letter's (its traceparent in deadLetter, link attribute
// kafkaretry.link = dead-letter), and writes its own context into the
// copy's traceparent, so that the attempts after the redrive form a trace
// of their own that points back to the failure. It returns the end of
// the span: call it with the write's error.
func Redrive(ctx context.Context, tp trace.TracerProvider, copy *kafka.Message, deadLetter []kafka.Header) (end func(error)) {
	if Off(tp) {
		return func(error) {}
	}
	attrs := append(messaging(copy.Topic, semconv.MessagingOperationTypeSend, "redrive"),
		AttrRoute.String("redrive"))
	if len(copy.Key) > 0 {
		attrs = append(attrs, semconv.MessagingKafkaMessageKey(text(copy.Key)))
	}
	if v, ok := retrymeta.Get(copy.Headers, retrymeta.HeaderRedriveCount); ok {
		if n, err := strconv.Atoi(v); err == nil {
			attrs = append(attrs, AttrRedriveCount.Int(n))
		}
	}
	opts := []trace.SpanStartOption{trace.WithNewRoot(), trace.WithSpanKind(trace.SpanKindProducer), trace.WithAttributes(attrs...)}
	if dl := SpanContext(deadLetter, retrymeta.HeaderTraceParent); dl.IsValid() {
		opts = append(opts, trace.WithLinks(trace.Link{SpanContext: dl, Attributes: []attribute.KeyValue{AttrLink.String(LinkDeadLetter)}}))
	}
	sctx, span := tracer(tp).Start(ctx, "redrive "+copy.Topic, opts...)
	h := append([]kafka.Header(nil), copy.Headers...)
	propagator.Inject(sctx, Headers{&h})
	copy.Headers = h
	return func(err error) {
		if err != nil {
			span.SetStatus(codes.Error, text([]byte(err.Error())))
		}
		span.End()
	}
}
