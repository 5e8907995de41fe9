package grouplag_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/segmentio/kafka-go"

	"github.com/reeferdlq/reefer-dlq/pkg/platform/devbroker"
	"github.com/reeferdlq/reefer-dlq/pkg/platform/grouplag"
	"github.com/reeferdlq/reefer-dlq/pkg/platform/kafkaclient"
)

const metric = "test_consumer_lag"

func collector(t *testing.T, cfg kafkaclient.Config) *grouplag.Collector {
	t.Helper()
	c, err := grouplag.New(grouplag.Config{
		Kafka: cfg, Group: "g", Topic: "orders",
		Desc: prometheus.NewDesc(metric, "Lag.", grouplag.Labels, nil),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// write puts n records on one partition of orders.
func write(t *testing.T, client *kafka.Client, partition, n int) {
	t.Helper()
	records := make([]kafka.Record, n)
	for i := range records {
		records[i] = kafka.Record{Value: kafka.NewBytes([]byte("x"))}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	resp, err := client.Produce(ctx, &kafka.ProduceRequest{Topic: "orders", Partition: partition,
		RequiredAcks: kafka.RequireAll, Records: kafka.NewRecordReader(records...)})
	if err != nil || resp.Error != nil {
		t.Fatalf("produce to partition %d: %v %v", partition, err, resp)
	}
}

// commit commits offset for the group g on one partition, without joining.
func commit(t *testing.T, client *kafka.Client, partition int, offset int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	resp, err := client.OffsetCommit(ctx, &kafka.OffsetCommitRequest{GroupID: "g", GenerationID: -1,
		Topics: map[string][]kafka.OffsetCommit{"orders": {{Partition: partition, Offset: offset}}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range resp.Topics["orders"] {
		if p.Error != nil {
			t.Fatal(p.Error)
		}
	}
}

func expect(t *testing.T, c prometheus.Collector, lags ...string) {
	t.Helper()
	want := "# HELP " + metric + " Lag.\n# TYPE " + metric + " gauge\n"
	for i, l := range lags {
		want += metric + `{partition="` + string(rune('0'+i)) + `",topic="orders"} ` + l + "\n"
	}
	if err := testutil.CollectAndCompare(c, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
}

func TestLagIsEndMinusCommittedOnEveryPartition(t *testing.T) {
	b, err := devbroker.Start(t.Context(), devbroker.Config{Topics: map[string]int{"orders": 3}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	cfg := kafkaclient.Config{Brokers: []string{b.Addr()}, ClientID: t.Name()}
	client := &kafka.Client{Addr: kafka.TCP(b.Addr())}
	c := collector(t, cfg)

	// Nothing written, nothing committed: no lag, but a series per
	// partition, so that an alert sees a zero rather than nothing.
	expect(t, c, "0", "0", "0")

	// A group that never committed is behind by every record.
	write(t, client, 0, 5)
	write(t, client, 2, 3)
	expect(t, c, "5", "0", "3")

	// Committed offsets are subtracted per partition, not summed or
	// sampled from the last partition read.
	commit(t, client, 0, 2)
	commit(t, client, 2, 3)
	expect(t, c, "3", "0", "0")

	// Writes after the commit count; a commit at the end clears it.
	write(t, client, 1, 4)
	commit(t, client, 0, 5)
	expect(t, c, "0", "4", "0")
}

func TestAnUnreachableBrokerExportsNoSeries(t *testing.T) {
	b, err := devbroker.Start(t.Context(), devbroker.Config{Topics: map[string]int{"orders": 1}})
	if err != nil {
		t.Fatal(err)
	}
	c := collector(t, kafkaclient.Config{Brokers: []string{b.Addr()}, ClientID: t.Name()})
	b.Close()
	// A made-up zero would tell the operator all is well.
	if n := testutil.CollectAndCount(c); n != 0 {
		t.Errorf("exported %d series with the broker down, want none", n)
	}
}
