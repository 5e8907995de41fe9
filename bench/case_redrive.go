package main

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/reeferdlq/reefer-dlq/bench/report"
	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/failure"
	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/retrymeta"
	"github.com/reeferdlq/reefer-dlq/services/dlq-cli/dlq"
)

// caseRedrive is case 7: `dlq redrive --yes`, the whole command as an
// operator runs it (in this process): read the resolution log and the
// dead-letter topic, publish every pending letter to the retry topic,
// record each in the resolution log, commit. Once as fast as it goes, once
// with --rate.
func caseRedrive(ctx context.Context, e *env) ([]report.Row, error) {
	n := e.p.orders
	elapsed, err := e.redrive(ctx, "c7a", n)
	if err != nil {
		return nil, fmt.Errorf("unthrottled: %w", err)
	}
	rows := []report.Row{{
		Case: "7", Key: "7-fast", Name: "dlq redrive, unthrottled",
		Params: fmt.Sprintf("%d dead letters (max-attempts, transient) on 3 partitions; `dlq redrive --yes` to the retry topic; wall time of the whole command", n),
		Value:  round(float64(n)/elapsed.Elapsed.Seconds(), 0), Unit: "records/s",
		Metrics: elapsed.metrics(nil),
		Goals:   []report.Goal{{Metric: report.MetricValue, Op: ">=", Target: 20000}},
	}}

	m := e.p.throttled
	rate := e.p.redriveRate
	slow, err := e.redrive(ctx, "c7b", m, "--rate", strconv.FormatFloat(rate, 'f', -1, 64))
	if err != nil {
		return rows, fmt.Errorf("--rate %g: %w", rate, err)
	}
	rows = append(rows, report.Row{
		Case: "7", Key: "7-rate", Name: fmt.Sprintf("dlq redrive --rate %g: achieved rate", rate),
		Params: fmt.Sprintf("%d dead letters; `dlq redrive --yes --rate %g`; wall time of the whole command (start-up included; the limiter lets a burst of a tenth of a second go at once)", m, rate),
		Value:  round(float64(m)/slow.Elapsed.Seconds(), 1), Unit: "records/s",
		Metrics:     slow.metrics(nil),
		RatioTarget: rate,
		Goals: []report.Goal{
			{Metric: report.MetricRatio, Op: ">=", Target: 0.95},
			{Metric: report.MetricRatio, Op: "<=", Target: 1.05},
		},
	})
	return rows, nil
}

// redrive seeds n dead letters on a fresh dead-letter topic and times
// `dlq redrive --yes` with extra flags.
func (e *env) redrive(ctx context.Context, prefix string, n int, extra ...string) (window, error) {
	t, err := e.newTopics(ctx, prefix)
	if err != nil {
		return window{}, err
	}
	letters, err := deadLetters(prefix, n)
	if err != nil {
		return window{}, err
	}
	if err := e.produce(ctx, t.DLQ, letters); err != nil {
		return window{}, err
	}
	args := append([]string{"redrive", "--yes",
		"--brokers", e.broker.Addr(),
		"--topic", t.DLQ,
		"--retry-topic", t.Retry,
		"--group", prefix + "-dlq-redrive",
		"--client-id", prefix + "-dlq",
	}, extra...)
	var stdout, stderr bytes.Buffer
	sw, err := e.startWatch(prefix)
	if err != nil {
		return window{}, err
	}
	code := dlq.Run(ctx, args, dlq.Env{Stdout: &stdout, Stderr: &stderr, Now: time.Now})
	w := sw.stop()
	if code != dlq.ExitOK {
		return window{}, fmt.Errorf("dlq %v: exit %d\n%s%s", args, code, stdout.String(), stderr.String())
	}
	got, err := e.count(ctx, t.Retry)
	if err != nil {
		return window{}, err
	}
	if got != int64(n) {
		return window{}, fmt.Errorf("%d records on the retry topic after redrive, want %d", got, n)
	}
	return w, nil
}

// deadLetters builds n dead letters as order-retry writes them after the
// last attempt.
func deadLetters(prefix string, n int) ([]kafka.Message, error) {
	now := time.Now()
	out := make([]kafka.Message, n)
	for i := range out {
		id := fmt.Sprintf("%s-%07d", prefix, i)
		m, err := orderRecord(id, now.Add(-time.Hour))
		if err != nil {
			return nil, err
		}
		m.Headers = retrymeta.Apply(nil, retrymeta.Meta{
			Attempt:           5,
			DueAt:             now.Add(-time.Minute),
			FirstFailureAt:    now.Add(-2 * time.Minute),
			LastFailureAt:     now.Add(-time.Minute),
			ErrorClass:        failure.Transient,
			ErrorMessage:      "inventory PUT /containers/R-1/allocation: 503 Service Unavailable",
			OriginalTopic:     "orders",
			OriginalPartition: i % 6,
			OriginalOffset:    int64(i),
			OriginalTimestamp: now.Add(-time.Hour),
			ErrorStack:        "goroutine 7 [running]:\nallocation.(*Service).Allocate(...)",
			DLQReason:         retrymeta.MaxAttempts,
			DeadLetteredAt:    now.Add(-time.Minute),
		})
		out[i] = m
	}
	return out, nil
}
