package main

import (
	"context"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/reeferdlq/reefer-dlq/bench/report"
	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/consumer"
)

// casePipe is case 1: the ceiling of this machine for the services'
// traffic. The same consumer loop the services use (pkg/kafkaretry/consumer: a
// kafka-go group reader, MAX_IN_FLIGHT records at once, commits after the
// handler) with a handler that only writes each record on, synchronously,
// as the services write their outcome. No database, no HTTP.
func casePipe(ctx context.Context, e *env) ([]report.Row, error) {
	n := e.p.orders
	t, err := e.newTopics(ctx, "c1")
	if err != nil {
		return nil, err
	}
	msgs, err := orderRecords("P", n)
	if err != nil {
		return nil, err
	}

	// The producer alone, into a topic nobody reads: the rate at which the
	// bench can feed the other cases.
	swp, err := e.startWatch("1-produce")
	if err != nil {
		return nil, err
	}
	if err := e.produce(ctx, t.Containers, msgs); err != nil {
		return nil, err
	}
	wp := swp.stop()
	produceRow := report.Row{
		Case: "1", Key: "1-produce", Name: "input producer alone (feeds every case)",
		Params: fmt.Sprintf("%d orders of %d bytes, kafka-go writer, batches of %d, 2 batches in flight, acks=all", n, len(msgs[0].Value), produceChunk),
		Value:  round(float64(n)/wp.Elapsed.Seconds(), 0), Unit: "orders/s",
		Metrics: wp.metrics(nil),
		Note:    "must stay well above the rates of the other cases, or they would measure the producer",
	}

	out, err := e.kafka.NewWriter(t.Retry)
	if err != nil {
		return nil, err
	}
	defer out.Close()
	const group = "c1-pipe"
	reader, err := e.kafka.NewReader(kafka.ReaderConfig{GroupID: group, Topic: t.Orders})
	if err != nil {
		return nil, err
	}
	defer reader.Close()
	pipe := goRun(ctx, func(ctx context.Context) error {
		return consumer.Run(ctx, consumer.Config{
			Reader:      reader,
			MaxInFlight: e.p.inFlight,
			Handler: func(ctx context.Context, m kafka.Message) error {
				return out.WriteMessages(ctx, kafka.Message{Key: m.Key, Value: m.Value, Headers: m.Headers})
			},
		})
	})
	defer pipe.stop()

	if err := e.warmUp(ctx, t.Orders, group, nil); err != nil {
		return []report.Row{produceRow}, err
	}
	sw, err := e.startWatch("1-pipe")
	if err != nil {
		return nil, err
	}
	if err := e.produce(ctx, t.Orders, msgs); err != nil {
		return nil, err
	}
	if err := e.waitCommitted(ctx, group, t.Orders, 5*time.Minute); err != nil {
		return nil, err
	}
	w := sw.stop()
	if err := pipe.stop(); err != nil {
		return nil, fmt.Errorf("pipe consumer: %w", err)
	}
	written, err := e.count(ctx, t.Retry)
	if err != nil {
		return nil, err
	}
	if want := int64(n + 1); written != want {
		return nil, fmt.Errorf("pipe wrote %d records, want %d (the orders and the warm-up)", written, want)
	}
	return []report.Row{produceRow, {
		Case: "1", Key: "1", Name: "pipe limit: kafka-go consume → produce, no-op handler",
		Params: fmt.Sprintf("%d orders on 6 partitions; pkg/kafkaretry/consumer group reader, %d in flight, commit every 200 ms; one synchronous write per record (acks=all, batch timeout 5 ms)", n, e.p.inFlight),
		Value:  round(float64(n)/w.Elapsed.Seconds(), 0), Unit: "orders/s",
		Metrics: w.metrics(nil),
		Note:    "reefer-manager does more Kafka work per order: two events written, and the one it writes back to orders read and skipped",
	}}, nil
}
