package kafkalog_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/segmentio/kafka-go"

	"github.com/reeferdlq/reefer-dlq/pkg/platform/devbroker"
	"github.com/reeferdlq/reefer-dlq/pkg/platform/kafkaclient"
	"github.com/reeferdlq/reefer-dlq/services/dlq-cli/kafkalog"
)

func open(t *testing.T, topics map[string]int) (*kafkalog.Log, context.Context) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	b, err := devbroker.Start(ctx, devbroker.Config{Topics: topics})
	if err != nil {
		t.Fatal(err)
	}
	l, err := kafkalog.Open(kafkaclient.Config{Brokers: []string{b.Addr()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close(); b.Close() })
	return l, ctx
}

func scanAll(t *testing.T, ctx context.Context, l *kafkalog.Log, topic string, partition int, from, to int64) []kafka.Message {
	t.Helper()
	var out []kafka.Message
	if err := l.Scan(ctx, topic, partition, from, to, func(m kafka.Message) error {
		out = append(out, m)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestAppendToAndScanKeepRecordsExactly(t *testing.T) {
	l, ctx := open(t, map[string]int{"t": 2})
	at := time.Date(2026, 1, 2, 3, 4, 5, 6e6, time.UTC)
	var msgs []kafka.Message
	for i := range 5 {
		msgs = append(msgs, kafka.Message{
			Key:     []byte(fmt.Sprintf("k%d", i)),
			Value:   []byte{0xff, byte(i), 0x00},
			Headers: []kafka.Header{{Key: "a", Value: []byte("1")}, {Key: "a", Value: []byte("2")}, {Key: "empty", Value: []byte{}}},
			Time:    at.Add(time.Duration(i) * time.Millisecond),
		})
	}
	msgs = append(msgs, kafka.Message{Key: nil, Value: nil, Time: at}) // a tombstone without key
	base, err := l.AppendTo(ctx, "t", 1, msgs)
	if err != nil || base != 0 {
		t.Fatalf("AppendTo = %d, %v", base, err)
	}
	parts, err := l.Partitions(ctx, "t")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]kafkalog.Partition{{ID: 0, First: 0, End: 0}, {ID: 1, First: 0, End: 6}}, parts); diff != "" {
		t.Fatalf("partitions (-want +got):\n%s", diff)
	}
	got := scanAll(t, ctx, l, "t", 1, 0, 6)
	if len(got) != 6 {
		t.Fatalf("scanned %d records, want 6", len(got))
	}
	for i, m := range got {
		want := msgs[i]
		want.Topic, want.Partition, want.Offset = "t", 1, int64(i)
		if diff := cmp.Diff(want, m, cmpMessage); diff != "" {
			t.Errorf("record %d (-want +got):\n%s", i, diff)
		}
	}
	// A scan can start and stop anywhere.
	mid := scanAll(t, ctx, l, "t", 1, 2, 4)
	if len(mid) != 2 || mid[0].Offset != 2 || mid[1].Offset != 3 {
		t.Errorf("scan [2,4): %d records", len(mid))
	}
	if n := len(scanAll(t, ctx, l, "t", 0, 0, 0)); n != 0 {
		t.Errorf("empty partition: %d records", n)
	}
}

// cmpMessage compares what a record carries; nil and empty byte slices are
// the same on the wire.
var cmpMessage = cmp.Comparer(func(a, b kafka.Message) bool {
	eq := func(x, y []byte) bool { return string(x) == string(y) }
	if a.Topic != b.Topic || a.Partition != b.Partition || a.Offset != b.Offset || !a.Time.Equal(b.Time) ||
		!eq(a.Key, b.Key) || !eq(a.Value, b.Value) || len(a.Headers) != len(b.Headers) {
		return false
	}
	for i := range a.Headers {
		if a.Headers[i].Key != b.Headers[i].Key || !eq(a.Headers[i].Value, b.Headers[i].Value) {
			return false
		}
	}
	return true
})

func TestAppendPartitionsByKeyLikeTheServicesWriters(t *testing.T) {
	l, ctx := open(t, map[string]int{"t": 6})
	var msgs []kafka.Message
	for i := range 30 {
		msgs = append(msgs, kafka.Message{Key: []byte(fmt.Sprintf("O-%d", i)), Value: []byte("v")})
	}
	coords, err := l.Append(ctx, "t", msgs)
	if err != nil {
		t.Fatal(err)
	}
	hash := &kafka.Hash{}
	next := map[int]int64{}
	for i, c := range coords {
		want := hash.Balance(msgs[i], 0, 1, 2, 3, 4, 5)
		if c.Topic != "t" || c.Partition != want || c.Offset != next[want] {
			t.Errorf("message %d landed at %v, want partition %d offset %d", i, c, want, next[want])
		}
		next[want]++
	}
	if _, err := l.Append(ctx, "missing", msgs[:1]); !errors.Is(err, kafkalog.ErrTopicNotFound) {
		t.Errorf("Append to a missing topic: %v", err)
	}
}

func TestPartitionsOfAMissingTopic(t *testing.T) {
	l, ctx := open(t, map[string]int{"t": 1})
	if _, err := l.Partitions(ctx, "nope"); !errors.Is(err, kafkalog.ErrTopicNotFound) {
		t.Errorf("Partitions(nope) error = %v, want ErrTopicNotFound", err)
	}
}

func TestGroupOffsetsWithoutJoiningTheGroup(t *testing.T) {
	l, ctx := open(t, map[string]int{"t": 3})
	got, err := l.GroupOffsets(ctx, "g", "t", []int{0, 1, 2})
	if err != nil || len(got) != 0 {
		t.Fatalf("offsets of a new group = %v, %v; want none", got, err)
	}
	if err := l.CommitGroup(ctx, "g", "t", map[int]int64{0: 5, 2: 7}); err != nil {
		t.Fatal(err)
	}
	got, err = l.GroupOffsets(ctx, "g", "t", []int{0, 1, 2})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[int]int64{0: 5, 2: 7}, got); diff != "" {
		t.Errorf("offsets (-want +got):\n%s", diff)
	}
}

func TestEnsureTopicCreatesOnceAndWaitsForIt(t *testing.T) {
	l, ctx := open(t, map[string]int{"t": 1})
	for range 2 {
		if err := l.EnsureTopic(ctx, "t.resolutions", 1, map[string]string{"cleanup.policy": "compact"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := l.Append(ctx, "t.resolutions", []kafka.Message{{Key: []byte("0:1"), Value: []byte("{}")}}); err != nil {
		t.Errorf("append right after creating: %v", err)
	}
}

func TestPingReportsAnUnreachableBroker(t *testing.T) {
	l, err := kafkalog.Open(kafkaclient.Config{Brokers: []string{"127.0.0.1:1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := l.Ping(ctx); err == nil {
		t.Error("Ping of a closed port succeeded")
	}
}

func TestAppendSplitsLargeBatchesBelowTheBrokersLimit(t *testing.T) {
	l, ctx := open(t, map[string]int{"t": 1})
	big := make([]byte, 400<<10) // three of them exceed the 1 MiB a record batch may have
	for i := range big {
		big[i] = byte('a' + i%26)
	}
	msgs := []kafka.Message{{Key: []byte("a"), Value: big}, {Key: []byte("b"), Value: big}, {Key: []byte("c"), Value: big}}
	base, err := l.AppendTo(ctx, "t", 0, msgs)
	if err != nil || base != 0 {
		t.Fatalf("AppendTo = %d, %v", base, err)
	}
	got := scanAll(t, ctx, l, "t", 0, 0, 3)
	if len(got) != 3 || string(got[2].Key) != "c" || len(got[2].Value) != len(big) {
		t.Fatalf("read back %d records", len(got))
	}
}
