package tracing_test

import (
	"context"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/failure"
	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/retrymeta"
	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/tracing"
)

// BenchmarkRetryHop is the pattern's own per-record work for one failed
// attempt (read the record's retry headers, process it in a consumer
// span, say how the attempt ended, stamp the next attempt's headers and
// send it in a producer span), measured side by side:
//
//   - untraced: the same work with no tracing call at all (the code
//     before tracing);
//   - off: tracing present, no provider (no OTEL_EXPORTER_OTLP_ENDPOINT):
//     what every deployment without a collector runs;
//   - on: the SDK, every span sampled, kept by an in-memory exporter.
//
// The database and inventory calls are left out, so the ratios are an
// upper bound of what tracing costs a real record (docs/performance.md,
// "Tracing's cost"): run with
//
//	go test -run '^$' -bench RetryHop -count 6 ./tracing
func BenchmarkRetryHop(b *testing.B) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	in := kafka.Message{Topic: "order-retries", Partition: 3, Offset: 42, Key: []byte("O-1"), Value: []byte(`{"orderId":"O-1"}`),
		Headers: retrymeta.Apply(nil, retrymeta.Meta{
			Attempt: 1, DueAt: now, FirstFailureAt: now, LastFailureAt: now, ErrorClass: failure.Transient, ErrorMessage: "503",
			OriginalTopic: "orders", OriginalPartition: 3, OriginalOffset: 7, OriginalTimestamp: now,
		})}
	cause := failure.NewTransient("http-503", nil)

	// hop is the work of one attempt; send wraps the write, traced says
	// whether the attempt reports to its span.
	hop := func(ctx context.Context, msg kafka.Message, traced bool, send func(context.Context, []kafka.Message) func(error)) error {
		prev, err := retrymeta.ParseRetry(msg.Headers)
		if err != nil {
			return err
		}
		next := prev
		next.Attempt++
		next.LastFailureAt = now
		next.DueAt = now.Add(2 * time.Second)
		out := kafka.Message{Topic: msg.Topic, Key: msg.Key, Value: msg.Value, Headers: retrymeta.Apply(msg.Headers, next)}
		if traced {
			tracing.Attempt(ctx, "retry", string(failure.Transient), "", 2*time.Second, cause)
			if link := tracing.RetryLink(ctx); link != "" {
				out.Headers = append(out.Headers, kafka.Header{Key: "x-retry-link", Value: []byte(link)})
			}
		}
		end := send(ctx, []kafka.Message{out})
		end(nil)
		return nil
	}
	run := func(b *testing.B, tp trace.TracerProvider, traced bool) {
		b.ReportAllocs()
		send := func(context.Context, []kafka.Message) func(error) { return func(error) {} }
		if traced {
			send = func(ctx context.Context, msgs []kafka.Message) func(error) { return tracing.Send(ctx, tp, msgs) }
		}
		h := func(ctx context.Context, msg kafka.Message) error { return hop(ctx, msg, traced, send) }
		if traced {
			h = tracing.Process(tp, "order-retry", h)
		}
		ctx := context.Background()
		for b.Loop() {
			if err := h(ctx, in); err != nil {
				b.Fatal(err)
			}
		}
	}

	b.Run("untraced", func(b *testing.B) { run(b, nil, false) })
	b.Run("off", func(b *testing.B) { run(b, noop.NewTracerProvider(), true) })
	b.Run("on", func(b *testing.B) {
		exp := tracetest.NewInMemoryExporter()
		tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()), sdktrace.WithSyncer(exp))
		b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
		// The exporter keeps every span; reset it now and then so memory
		// stays flat.
		n := 0
		run(b, tracingProvider{tp, func() {
			if n++; n%4096 == 0 {
				exp.Reset()
			}
		}}, true)
	})
}

// tracingProvider calls tick for every tracer asked for, so the "on"
// run can reset its exporter.
type tracingProvider struct {
	*sdktrace.TracerProvider
	tick func()
}

func (p tracingProvider) Tracer(name string, opts ...trace.TracerOption) trace.Tracer {
	p.tick()
	return p.TracerProvider.Tracer(name, opts...)
}
