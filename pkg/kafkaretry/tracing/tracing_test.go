package tracing_test

import (
	"context"
	"errors"
	"testing"
	"unicode/utf8"

	"github.com/segmentio/kafka-go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/failure"
	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/handoff"
	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/handoff/handofftest"
	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/retrymeta"
	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/tracing"
)

const (
	remoteTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
	remoteSpan  = "00f067aa0ba902b7"
	traceparent = "00-" + remoteTrace + "-" + remoteSpan + "-01"
)

func recorder() (*sdktrace.TracerProvider, *tracetest.SpanRecorder) {
	rec := tracetest.NewSpanRecorder()
	return sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)), rec
}

func record(headers ...kafka.Header) kafka.Message {
	return kafka.Message{Topic: "orders", Partition: 2, Offset: 41, Key: []byte("O-1"), Value: []byte(`{}`), Headers: headers}
}

func header(k, v string) kafka.Header { return kafka.Header{Key: k, Value: []byte(v)} }

func attrs(s sdktrace.ReadOnlySpan) map[attribute.Key]attribute.Value {
	m := map[attribute.Key]attribute.Value{}
	for _, kv := range s.Attributes() {
		m[kv.Key] = kv.Value
	}
	return m
}

// process runs one record through Process and returns its span and the
// span context the handler saw.
func process(t *testing.T, msg kafka.Message, herr error) (sdktrace.ReadOnlySpan, trace.SpanContext, error) {
	t.Helper()
	tp, rec := recorder()
	var seen trace.SpanContext
	h := tracing.Process(tp, "reefer-manager", func(ctx context.Context, _ kafka.Message) error {
		seen = trace.SpanContextFromContext(ctx)
		return herr
	})
	err := h(t.Context(), msg)
	ended := rec.Ended()
	if len(ended) != 1 {
		t.Fatalf("%d spans ended, want 1", len(ended))
	}
	return ended[0], seen, err
}

func TestProcessContinuesTheRecordsTrace(t *testing.T) {
	span, seen, err := process(t, record(header("traceparent", traceparent), header(retrymeta.HeaderAttempt, "2")), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := span.Parent().SpanID().String(); got != remoteSpan || !span.Parent().IsRemote() {
		t.Errorf("parent span %s (remote %v), want the record's %s", got, span.Parent().IsRemote(), remoteSpan)
	}
	if got := span.SpanContext().TraceID().String(); got != remoteTrace {
		t.Errorf("trace %s, want the record's %s", got, remoteTrace)
	}
	if !seen.Equal(span.SpanContext()) {
		t.Errorf("the handler ran in %v, want the consumer span %v", seen, span.SpanContext())
	}
	if span.Name() != "process orders" || span.SpanKind() != trace.SpanKindConsumer {
		t.Errorf("span %q kind %v, want \"process orders\", consumer", span.Name(), span.SpanKind())
	}
	want := map[attribute.Key]attribute.Value{
		"messaging.system":                   attribute.StringValue("kafka"),
		"messaging.operation.type":           attribute.StringValue("process"),
		"messaging.operation.name":           attribute.StringValue("process"),
		"messaging.destination.name":         attribute.StringValue("orders"),
		"messaging.destination.partition.id": attribute.StringValue("2"),
		"messaging.kafka.offset":             attribute.IntValue(41),
		"messaging.consumer.group.name":      attribute.StringValue("reefer-manager"),
		"messaging.kafka.message.key":        attribute.StringValue("O-1"),
		"kafkaretry.attempt":                 attribute.IntValue(3),
	}
	got := attrs(span)
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k].String(), v.String())
		}
	}
}

// TestProcessNeverFailsARecordForItsTraceHeaders: adversarial headers
// (a malformed traceparent, a malformed x-retry-link, an unreadable
// attempt) are ignored: the handler runs, its result is returned, and a
// record without a usable traceparent starts a new trace.
func TestProcessNeverFailsARecordForItsTraceHeaders(t *testing.T) {
	for _, tc := range []struct {
		name    string
		headers []kafka.Header
	}{
		{"no traceparent", nil},
		{"empty traceparent", []kafka.Header{header("traceparent", "")}},
		{"garbage traceparent", []kafka.Header{header("traceparent", "not-a-trace")}},
		{"all-zero trace id", []kafka.Header{header("traceparent", "00-00000000000000000000000000000000-00f067aa0ba902b7-01")}},
		{"version ff", []kafka.Header{header("traceparent", "ff-"+remoteTrace+"-"+remoteSpan+"-01")}},
		{"invalid UTF-8", []kafka.Header{{Key: "traceparent", Value: []byte{0xff, 0xfe, '-', 0}}}},
		{"huge", []kafka.Header{header("traceparent", string(make([]byte, 1<<16)))}},
		{"malformed retry link and attempt", []kafka.Header{header(retrymeta.HeaderRetryLink, "00-zz"), header(retrymeta.HeaderAttempt, "-7")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			span, _, err := process(t, record(tc.headers...), nil)
			if err != nil {
				t.Fatalf("handler result %v, want nil", err)
			}
			if span.Parent().IsValid() {
				t.Errorf("parent %v, want none: a new trace", span.Parent())
			}
			if !span.SpanContext().IsValid() || span.SpanContext().TraceID().String() == remoteTrace {
				t.Errorf("trace %v, want a new valid one", span.SpanContext().TraceID())
			}
			if len(span.Links()) != 0 {
				t.Errorf("links %v, want none", span.Links())
			}
			if got := attrs(span)["kafkaretry.attempt"]; got != attribute.IntValue(1) {
				t.Errorf("attempt %v, want 1", got.String())
			}
		})
	}
}

// TestProcessKeepsAttributesValidUTF8: OTLP strings must be valid UTF-8;
// one binary key would fail the export of the whole batch.
func TestProcessKeepsAttributesValidUTF8(t *testing.T) {
	msg := record()
	msg.Key = []byte{'O', 0xff, '-', 0xfe}
	span, _, _ := process(t, msg, errors.New("bad \xff byte"))
	if got := attrs(span)["messaging.kafka.message.key"].AsString(); !utf8.ValidString(got) || got == "" {
		t.Errorf("key attribute %q, want valid UTF-8", got)
	}
	if got := span.Status().Description; !utf8.ValidString(got) {
		t.Errorf("status %q, want valid UTF-8", got)
	}
}

func TestProcessLinksToTheFailedAttempt(t *testing.T) {
	const failed = "00-" + remoteTrace + "-b7ad6b7169203331-01"
	span, _, _ := process(t, record(header("traceparent", traceparent), header(retrymeta.HeaderRetryLink, failed)), nil)
	links := span.Links()
	if len(links) != 1 {
		t.Fatalf("links %v, want 1", links)
	}
	if got := links[0].SpanContext.SpanID().String(); got != "b7ad6b7169203331" {
		t.Errorf("link to span %s, want the failed attempt's b7ad6b7169203331", got)
	}
	if got := links[0].Attributes; len(got) != 1 || got[0] != attribute.String("kafkaretry.link", "previous-attempt") {
		t.Errorf("link attributes %v, want kafkaretry.link=previous-attempt", got)
	}
}

func TestProcessMarksAFailedHandOffAsError(t *testing.T) {
	span, _, err := process(t, record(), errors.New("broker down"))
	if err == nil || err.Error() != "broker down" {
		t.Errorf("error %v, want the handler's", err)
	}
	if span.Status().Code != codes.Error {
		t.Errorf("status %v, want error", span.Status())
	}
}

func TestOffProvidersAddNothing(t *testing.T) {
	for _, tp := range []trace.TracerProvider{nil, noop.NewTracerProvider()} {
		if !tracing.Off(tp) {
			t.Errorf("Off(%T) = false, want true", tp)
		}
		msgs := []kafka.Message{{Topic: "containers", Headers: []kafka.Header{header("traceparent", traceparent)}}}
		tracing.Send(t.Context(), tp, msgs)(nil)
		if got, _ := retrymeta.Get(msgs[0].Headers, "traceparent"); got != traceparent || len(msgs[0].Headers) != 1 {
			t.Errorf("headers %v, want the traceparent unchanged", msgs[0].Headers)
		}
	}
	tp, _ := recorder()
	if tracing.Off(tp) {
		t.Error("Off(sdk provider) = true, want false")
	}
}

func TestSendInjectsItsOwnContext(t *testing.T) {
	tp, rec := recorder()
	ctx, parent := tp.Tracer("test").Start(t.Context(), "attempt")
	msgs := []kafka.Message{
		{Topic: "orders", Key: []byte("O-1"), Headers: []kafka.Header{header("traceparent", traceparent), header("content-type", "x")}},
		{Topic: "containers", Key: []byte("C-1")},
	}
	tracing.Send(ctx, tp, msgs)(nil)
	parent.End()
	ended := rec.Ended()
	if len(ended) != 3 {
		t.Fatalf("%d spans, want 2 sends and the parent", len(ended))
	}
	for i, s := range ended[:2] {
		if s.SpanKind() != trace.SpanKindProducer || s.Parent().SpanID() != parent.SpanContext().SpanID() {
			t.Errorf("span %q: kind %v parent %v, want a producer child of the attempt", s.Name(), s.SpanKind(), s.Parent().SpanID())
		}
		want := tracing.Traceparent(s.SpanContext())
		n := 0
		for _, h := range msgs[i].Headers {
			if h.Key == "traceparent" {
				n++
			}
		}
		if got, _ := retrymeta.Get(msgs[i].Headers, "traceparent"); got != want || n != 1 {
			t.Errorf("record %d: traceparent %q (%d of them), want the send span's %q once", i, got, n, want)
		}
	}
	if ended[0].Name() != "send orders" || ended[1].Name() != "send containers" {
		t.Errorf("names %q, %q", ended[0].Name(), ended[1].Name())
	}
}

// TestRouterCarriesTheFailedAttempt: a failed attempt's hand-off
// carries the attempt's span context in x-retry-link, and a producer
// span's in traceparent; the attempt's span says how it failed.
func TestRouterCarriesTheFailedAttempt(t *testing.T) {
	tp, rec := recorder()
	w := &handofftest.Writer{}
	r := handofftest.NewRouter(w)
	r.Tracing = tp
	in := record(header("traceparent", traceparent))
	ctx, attempt := tp.Tracer("test").Start(tracing.Extract(t.Context(), in), "process orders")
	d, err := r.Fail(ctx, in, retrymeta.Meta{}, failure.NewTransient("inventory-5xx", errors.New("503")))
	attempt.End()
	if err != nil || d.Route != handoff.RouteRetry {
		t.Fatalf("decision %v, %v; want a retry", d.Route, err)
	}
	out := w.Only(t)[0]
	if got, _ := retrymeta.Get(out.Headers, retrymeta.HeaderRetryLink); got != tracing.Traceparent(attempt.SpanContext()) {
		t.Errorf("x-retry-link %q, want the attempt's %q", got, tracing.Traceparent(attempt.SpanContext()))
	}
	ended := rec.Ended()
	send := ended[0]
	if got, _ := retrymeta.Get(out.Headers, "traceparent"); got != tracing.Traceparent(send.SpanContext()) || send.Name() != "send order-retries" {
		t.Errorf("traceparent %q, want the %q span's", got, send.Name())
	}
	a := attrs(ended[1])
	for k, v := range map[attribute.Key]attribute.Value{
		"kafkaretry.route":          attribute.StringValue("retry"),
		"kafkaretry.error.class":    attribute.StringValue("transient"),
		"kafkaretry.retry.delay_ms": attribute.Int64Value(d.Delay.Milliseconds()),
	} {
		if a[k] != v {
			t.Errorf("attempt span: %s = %v, want %v", k, a[k].String(), v.String())
		}
	}
	if ended[1].Status().Code != codes.Error {
		t.Errorf("attempt span status %v, want error", ended[1].Status())
	}
}

func TestRedriveStartsANewTraceLinkedToTheDeadLetter(t *testing.T) {
	tp, rec := recorder()
	copy := kafka.Message{Topic: "order-retries", Key: []byte("O-1"), Headers: []kafka.Header{header("traceparent", traceparent), header(retrymeta.HeaderRedriveCount, "1")}}
	tracing.Redrive(t.Context(), tp, &copy, []kafka.Header{header("traceparent", traceparent)})(nil)
	s := rec.Ended()[0]
	if s.Parent().IsValid() || s.SpanContext().TraceID().String() == remoteTrace {
		t.Errorf("parent %v trace %v, want a new trace", s.Parent(), s.SpanContext().TraceID())
	}
	if l := s.Links(); len(l) != 1 || l[0].SpanContext.SpanID().String() != remoteSpan {
		t.Errorf("links %v, want one to the dead letter's span %s", l, remoteSpan)
	}
	if got, _ := retrymeta.Get(copy.Headers, "traceparent"); got != tracing.Traceparent(s.SpanContext()) {
		t.Errorf("copy's traceparent %q, want the redrive span's", got)
	}
	if got := attrs(s)["kafkaretry.redrive.count"]; got != attribute.IntValue(1) {
		t.Errorf("redrive count %v, want 1", got.String())
	}
}
