package waterfall_test

import (
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/reeferdlq/reefer-dlq/deployments/local/waterfall"
)

func TestPrintShowsHopsWaitsLinksAndOutcomes(t *testing.T) {
	t0 := time.Unix(1700000000, 0)
	tid1, tid2 := trace.TraceID{1}, trace.TraceID{2}
	a1, send, a2, redrive, a3, other := trace.SpanID{1}, trace.SpanID{2}, trace.SpanID{3}, trace.SpanID{4}, trace.SpanID{5}, trace.SpanID{6}
	key := "messaging.kafka.message.key"
	spans := []waterfall.Span{
		{Service: "reefer-manager", Name: "process orders", Kind: trace.SpanKindConsumer, Trace: tid1, ID: a1, Start: t0, End: t0.Add(5 * time.Millisecond),
			Attrs:  map[string]string{key: "O-1", "kafkaretry.attempt": "1", "kafkaretry.route": "retry", "kafkaretry.error.class": "transient", "kafkaretry.retry.delay_ms": "200"},
			Failed: true, FailedBecause: "inventory answered 503"},
		{Service: "reefer-manager", Name: "send order-retries", Kind: trace.SpanKindProducer, Trace: tid1, ID: send, Parent: a1, Start: t0.Add(3 * time.Millisecond), End: t0.Add(4 * time.Millisecond), Attrs: map[string]string{key: "O-1"}},
		{Service: "order-retry", Name: "process order-retries", Kind: trace.SpanKindConsumer, Trace: tid1, ID: a2, Parent: send, Start: t0.Add(204 * time.Millisecond), End: t0.Add(210 * time.Millisecond),
			Attrs: map[string]string{key: "O-1", "kafkaretry.attempt": "2", "kafkaretry.route": "dead-letter", "kafkaretry.error.class": "permanent", "kafkaretry.dead_letter.reason": "permanent-error"},
			Links: []trace.SpanContext{trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid1, SpanID: a1})}},
		{Service: "dlq", Name: "redrive order-retries", Kind: trace.SpanKindProducer, Trace: tid2, ID: redrive, Start: t0.Add(time.Minute), End: t0.Add(time.Minute + time.Millisecond),
			Attrs: map[string]string{key: "O-1", "kafkaretry.route": "redrive"}},
		{Service: "order-retry", Name: "process order-retries", Kind: trace.SpanKindConsumer, Trace: tid2, ID: a3, Parent: redrive, Start: t0.Add(time.Minute + 50*time.Millisecond), End: t0.Add(time.Minute + 60*time.Millisecond),
			Attrs: map[string]string{key: "O-1", "kafkaretry.attempt": "1", "kafkaretry.route": "allocated"}},
		{Service: "reefer-manager", Name: "process orders", Kind: trace.SpanKindConsumer, Trace: trace.TraceID{3}, ID: other, Start: t0, End: t0,
			Attrs: map[string]string{key: "O-2"}},
	}
	got := waterfall.Of(spans, "O-1")
	if len(got) != 5 {
		t.Fatalf("%d spans of O-1, want 5 (both traces, not O-2's)", len(got))
	}
	var b strings.Builder
	waterfall.Print(&b, "O-1", got)
	out := b.String()
	t.Log("\n" + out)
	for _, want := range []string{
		"process orders · attempt 1", "failed (transient) → retry in 200ms", "error: inventory answered 503",
		"waited 200ms on", "process order-retries · attempt 2", "dead letter: permanent-error",
		"↪ linked to reefer-manager process orders · attempt 1", "a new trace, started by the redrive",
		"redriven by dlq", "allocated", "60.050s",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("waterfall lacks %q", want)
		}
	}
}
