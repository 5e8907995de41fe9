package consumer

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/segmentio/kafka-go"
)

// retryRecord builds a record the way kafka-go decodes one: key, value and
// every header key and value in allocations of their own.
func retryRecord(i int) kafka.Message {
	names := []string{
		"x-retry-attempt", "x-retry-due-at", "x-retry-first-failure-at", "x-retry-last-error",
		"x-retry-error-class", "x-retry-original-topic", "x-retry-original-partition",
		"x-retry-original-offset", "x-retry-original-timestamp", "ce_id", "ce_type", "ce_source",
	}
	msg := kafka.Message{Topic: "order-retries", Partition: 3, Offset: int64(i),
		Key: fmt.Appendf(nil, "O-%08d", i), Value: make([]byte, 600)}
	for _, n := range names {
		msg.Headers = append(msg.Headers, kafka.Header{Key: string([]byte(n)), Value: fmt.Appendf(nil, "value-of-%s-%d", n, i)})
	}
	return msg
}

func TestCompactKeepsEveryByteAndSharesNothingWithTheOriginal(t *testing.T) {
	for _, msg := range []kafka.Message{retryRecord(7), {Topic: "t", Offset: 1}, {Key: []byte{}, Value: []byte("v")}} {
		got := compact(msg)
		if diff := cmp.Diff(msg, got); diff != "" {
			t.Errorf("compact changed the record (-orig +compact):\n%s", diff)
		}
		if len(msg.Value) > 0 {
			msg.Value[0] ^= 0xff
			if got.Value[0] == msg.Value[0] {
				t.Error("the compact record shares its value with the original")
			}
		}
		if len(got.Key) > 0 {
			got.Key = append(got.Key, 'x') // must not overwrite the value that follows
			if len(got.Value) > 0 && got.Value[0] == 'x' && msg.Value[0]^0xff != 'x' {
				t.Error("appending to the key overwrote the value")
			}
		}
	}
}

// TestCompactHoldsARetryRecordInLessMemory measures what 2,000 held retry
// records cost on the heap, as kafka-go decodes them and compacted. The
// ratio is deterministic (allocation sizes, not speed).
func TestCompactHoldsARetryRecordInLessMemory(t *testing.T) {
	const n = 2000
	held := func(build func(int) kafka.Message) uint64 {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		msgs := make([]kafka.Message, n)
		for i := range msgs {
			msgs[i] = build(i)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		runtime.KeepAlive(msgs)
		return (after.HeapAlloc - before.HeapAlloc) / n
	}
	decoded := held(retryRecord)
	compacted := held(func(i int) kafka.Message { return compact(retryRecord(i)) })
	t.Logf("held retry record: %d bytes as decoded, %d compacted (RecordSize %d)", decoded, compacted, RecordSize(retryRecord(0)))
	if compacted >= decoded*90/100 {
		t.Errorf("compacted %d bytes per record, want at least 10%% below the %d of a decoded one", compacted, decoded)
	}
	if size := uint64(RecordSize(retryRecord(0))); compacted > size {
		t.Errorf("a compacted record takes %d bytes, more than RecordSize's %d: the budget would undercount", compacted, size)
	}
}
