package retrymeta

import "github.com/segmentio/kafka-go"

// Record sizes, for checking a record against a topic's max.message.bytes
// before writing it. A record that is refused for its size is refused
// again on every retry, so the hand-off checks first and dead-letters an
// oversize record instead of blocking its partition behind it.
const (
	// RecordBatchOverhead is the fixed part of a Kafka record batch (the
	// v2 header: base offset, length, epoch, magic, CRC, attributes,
	// offsets, timestamps, producer id and epoch, sequence, count). A
	// broker compares the whole batch with the topic's max.message.bytes.
	RecordBatchOverhead = 61
	// DefaultMaxMessageBytes is Kafka's default max.message.bytes
	// (message.max.bytes = 1 MiB + 12 bytes), on the broker and per topic.
	DefaultMaxMessageBytes = 1048588
)

// RecordSize is an upper bound of the bytes msg takes in a record batch:
// its key, value and headers, plus every length and delta at the largest
// its varint can be. It is also at least what kafka-go's Writer counts
// against its BatchBytes. A record with
//
//	RecordSize(msg) <= maxMessageBytes - RecordBatchOverhead
//
// therefore fits a topic whose max.message.bytes is maxMessageBytes, and a
// kafka-go Writer whose BatchBytes is maxMessageBytes - RecordBatchOverhead
// never sends a batch that the topic refuses.
func RecordSize(msg kafka.Message) int {
	// length, attributes, timestamp delta, offset delta, key length,
	// value length, header count
	const fixed = 5 + 1 + 10 + 5 + 5 + 5 + 5
	n := fixed + len(msg.Key) + len(msg.Value)
	for _, h := range msg.Headers {
		n += 5 + len(h.Key) + 5 + len(h.Value)
	}
	return n
}

// MaxRecordSize is the largest RecordSize a topic with this
// max.message.bytes accepts (DefaultMaxMessageBytes when it is 0 or less).
func MaxRecordSize(maxMessageBytes int) int {
	if maxMessageBytes <= 0 {
		maxMessageBytes = DefaultMaxMessageBytes
	}
	return maxMessageBytes - RecordBatchOverhead
}
