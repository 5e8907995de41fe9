package redrive_test

import (
	"context"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/retrymeta"
	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/tracing"
	"github.com/reeferdlq/reefer-dlq/pkg/platform/devbroker"
	"github.com/reeferdlq/reefer-dlq/pkg/platform/kafkaclient"
	"github.com/reeferdlq/reefer-dlq/services/dlq-cli/deadletter"
	"github.com/reeferdlq/reefer-dlq/services/dlq-cli/kafkalog"
	"github.com/reeferdlq/reefer-dlq/services/dlq-cli/redrive"
	"github.com/reeferdlq/reefer-dlq/services/dlq-cli/resolution"
)

// TestRedriveSpanLinksTheCopyToItsDeadLetter: with tracing on, the copy
// a redrive publishes carries the traceparent of a new trace whose span
// links to the dead letter's.
func TestRedriveSpanLinksTheCopyToItsDeadLetter(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	b, err := devbroker.Start(ctx, devbroker.Config{Topics: map[string]int{"order-dead-letter": 2, "order-retries": 1}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	log, err := kafkalog.Open(kafkaclient.Config{Brokers: []string{b.Addr()}})
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	store := resolution.Store{Log: log, Topic: "order-dead-letter", ResolutionsTopic: "order-dead-letter.resolutions", Group: "dlq-redrive"}
	if err := store.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	const deadLetterTrace, deadLetterSpan = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	letter := deadLetter(0)
	for i, h := range letter.Headers {
		if h.Key == "traceparent" {
			letter.Headers[i].Value = []byte("00-" + deadLetterTrace + "-" + deadLetterSpan + "-01")
		}
	}
	cursor := resolution.NewCursor()
	cursor.Observe(letter.Position(), false)
	cursor.ScannedTo(1, 43)

	rec := tracetest.NewSpanRecorder()
	e := &redrive.Engine{
		Log: log, Store: store, State: resolution.NewState(), Cursor: cursor,
		To: redrive.ToRetry, RetryTopic: "order-retries", MaxRedrives: 3, By: "test",
		Tracing: sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)),
	}
	if _, err := e.Run(ctx, []deadletter.Letter{letter}); err != nil {
		t.Fatal(err)
	}
	spans := rec.Ended()
	if len(spans) != 1 || spans[0].Name() != "redrive order-retries" {
		t.Fatalf("spans %v, want one redrive span", spans)
	}
	s := spans[0]
	if links := s.Links(); len(links) != 1 || links[0].SpanContext.TraceID().String() != deadLetterTrace || links[0].SpanContext.SpanID().String() != deadLetterSpan {
		t.Errorf("links %v, want one to the dead letter's span %s", links, deadLetterSpan)
	}
	if s.SpanContext().TraceID().String() == deadLetterTrace || s.Parent().IsValid() {
		t.Errorf("trace %s parent %v: want a new trace", s.SpanContext().TraceID(), s.Parent())
	}
	var copies []kafka.Message
	_ = log.Scan(ctx, "order-retries", 0, 0, 1, func(m kafka.Message) error { copies = append(copies, m); return nil })
	if len(copies) != 1 {
		t.Fatalf("%d copies on order-retries, want 1", len(copies))
	}
	if got, _ := retrymeta.Get(copies[0].Headers, "traceparent"); got != tracing.Traceparent(s.SpanContext()) {
		t.Errorf("the copy's traceparent %q, want the redrive span's %q", got, tracing.Traceparent(s.SpanContext()))
	}
}
