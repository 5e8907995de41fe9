package deadletter

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/segmentio/kafka-go"

	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/retrymeta"
)

// Dialect names who wrote a dead letter, and so how its headers read.
type Dialect string

// The dialects dlq reads. Each maps its headers onto the same fields of a
// Letter (Meta.Original*, Meta.ErrorMessage, Meta.ErrorStack, ErrorType,
// Meta.Attempt where known), so every command works the same on all.
const (
	// Auto detects the dialect of each record from its headers.
	Auto Dialect = "auto"
	// Reefer is this suite's contract: x-retry-*, x-error-*, x-original-*,
	// x-dlq-* (package retrymeta).
	Reefer Dialect = "reefer"
	// Spring is Spring Kafka's DeadLetterPublishingRecoverer: kafka_dlt-*,
	// with the original partition, offset and timestamp as big-endian
	// binary numbers.
	Spring Dialect = "spring"
	// Connect is Kafka Connect's errors.deadletterqueue.context.headers:
	// __connect.errors.*, every value a UTF-8 string.
	Connect Dialect = "connect"
	// Streams is Kafka Streams' dead-letter queue (KIP-1034):
	// __streams.errors.*, every value a UTF-8 string.
	Streams Dialect = "streams"
	// ShareGroup is the dead-letter queue of share groups (KIP-1191),
	// written by the broker: __dlq.errors.*, every value a UTF-8 string.
	ShareGroup Dialect = "share-group"
	// Raw is anything else: the headers are shown as they are and nothing
	// is known about the failure.
	Raw Dialect = "raw"
)

// Dialects lists the dialects a record can be read as, for flags and
// completion.
var Dialects = []Dialect{Reefer, Spring, Connect, Streams, ShareGroup, Raw}

// ParseDialect accepts auto or one of Dialects.
func ParseDialect(s string) (Dialect, error) {
	if Dialect(s) == Auto {
		return Auto, nil
	}
	for _, d := range Dialects {
		if Dialect(s) == d {
			return d, nil
		}
	}
	names := make([]string, len(Dialects))
	for i, d := range Dialects {
		names[i] = string(d)
	}
	return "", fmt.Errorf("dialect %q: want auto, %s", s, strings.Join(names, ", "))
}

// Header names of the dialects, as their writers spell them. Spring's are
// org.springframework.kafka.support.KafkaHeaders.DLT_* (and the retry
// topic's attempts header); Connect's are DeadLetterQueueReporter's
// ERROR_HEADER_*; Streams' are ExceptionHandlerUtils' HEADER_ERRORS_*; the
// share group's are the broker's HEADER_DLQ_ERRORS_*.
const (
	SpringOriginalTopic         = "kafka_dlt-original-topic"
	SpringOriginalPartition     = "kafka_dlt-original-partition"      // 4-byte big-endian int
	SpringOriginalOffset        = "kafka_dlt-original-offset"         // 8-byte big-endian long
	SpringOriginalTimestamp     = "kafka_dlt-original-timestamp"      // 8-byte big-endian epoch ms
	SpringOriginalTimestampType = "kafka_dlt-original-timestamp-type" // CreateTime or LogAppendTime
	SpringOriginalConsumerGroup = "kafka_dlt-original-consumer-group"
	SpringExceptionFQCN         = "kafka_dlt-exception-fqcn"
	SpringExceptionCauseFQCN    = "kafka_dlt-exception-cause-fqcn"
	SpringExceptionMessage      = "kafka_dlt-exception-message"
	SpringExceptionStacktrace   = "kafka_dlt-exception-stacktrace"
	SpringKeyExceptionFQCN      = "kafka_dlt-key-exception-fqcn"
	SpringKeyExceptionMessage   = "kafka_dlt-key-exception-message"
	SpringKeyExceptionStack     = "kafka_dlt-key-exception-stacktrace"
	SpringRetryAttempts         = "retry_topic-attempts" // 4-byte big-endian int

	ConnectTopic            = "__connect.errors.topic"
	ConnectPartition        = "__connect.errors.partition"
	ConnectOffset           = "__connect.errors.offset"
	ConnectConnectorName    = "__connect.errors.connector.name"
	ConnectTaskID           = "__connect.errors.task.id"
	ConnectStage            = "__connect.errors.stage"
	ConnectClassName        = "__connect.errors.class.name"
	ConnectExceptionClass   = "__connect.errors.exception.class.name"
	ConnectExceptionMessage = "__connect.errors.exception.message"
	ConnectExceptionStack   = "__connect.errors.exception.stacktrace"

	StreamsException  = "__streams.errors.exception" // Throwable.toString(): "class: message"
	StreamsMessage    = "__streams.errors.message"
	StreamsStacktrace = "__streams.errors.stacktrace"
	StreamsTopic      = "__streams.errors.topic"
	StreamsPartition  = "__streams.errors.partition"
	StreamsOffset     = "__streams.errors.offset"

	ShareTopic         = "__dlq.errors.topic"
	SharePartition     = "__dlq.errors.partition"
	ShareOffset        = "__dlq.errors.offset"
	ShareGroupID       = "__dlq.errors.group"
	ShareDeliveryCount = "__dlq.errors.delivery.count"
	ShareMessage       = "__dlq.errors.message"
)

// prefixes tell the dialects apart. A record can carry several families:
// a Spring record that dlq redrove and that failed again has kafka_dlt-*
// from the new failure and x-original-*, x-dlq-redrive-count from the
// redrive. The foreign families describe the latest failure, so they win.
var prefixes = []struct {
	prefix  string
	dialect Dialect
}{
	{"kafka_dlt-", Spring},
	{"__connect.errors.", Connect},
	{"__streams.errors.", Streams},
	{"__dlq.errors.", ShareGroup},
}

// Detect returns the dialect of a record's headers.
func Detect(h []kafka.Header) Dialect {
	for _, p := range prefixes {
		for _, x := range h {
			if strings.HasPrefix(x.Key, p.prefix) {
				return p.dialect
			}
		}
	}
	for _, x := range h {
		switch x.Key {
		case retrymeta.HeaderDLQReason, retrymeta.HeaderErrorClass, retrymeta.HeaderAttempt, retrymeta.HeaderOriginalTopic:
			return Reefer
		}
	}
	return Raw
}

// IsDialectHeader reports whether a header belongs to a foreign dialect's
// dead-letter family: a record sent back to its original topic leaves them
// behind, so its consumer sees a fresh record.
func IsDialectHeader(key string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(key, p.prefix) {
			return true
		}
	}
	return key == SpringRetryAttempts
}

// names are where a dialect whose values are all UTF-8 strings keeps each
// field of the model; "" when it has no such header.
type names struct{ topic, partition, offset, attempts, errType, message, stack string }

var stringNames = map[Dialect]names{
	Connect:    {ConnectTopic, ConnectPartition, ConnectOffset, "", ConnectExceptionClass, ConnectExceptionMessage, ConnectExceptionStack},
	Streams:    {StreamsTopic, StreamsPartition, StreamsOffset, "", StreamsException, StreamsMessage, StreamsStacktrace},
	ShareGroup: {ShareTopic, SharePartition, ShareOffset, ShareDeliveryCount, "", ShareMessage, ""},
}

// foreign reads the headers of a non-suite dialect into a Meta and the
// exception's class. Problems (a binary number of the wrong length, text
// that is not UTF-8) are collected in malformed; the fields that could be
// read are kept.
func foreign(d Dialect, h []kafka.Header) (m retrymeta.Meta, errType string, malformed string) {
	var problems []string
	get := func(k string) (string, bool) { return retrymeta.Get(h, k) }
	text := func(k string, dst *string) {
		if v, ok := get(k); ok {
			if !utf8.ValidString(v) {
				problems = append(problems, fmt.Sprintf("header %s is not valid UTF-8", k))
				return
			}
			*dst = v
		}
	}
	decimal := func(k string, bits int, set func(int64)) {
		if v, ok := get(k); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, bits)
			if err != nil || n < 0 {
				problems = append(problems, fmt.Sprintf("header %s: %q is not a number >= 0", k, shorten(v)))
				return
			}
			set(n)
		}
	}
	switch d {
	case Spring:
		text(SpringOriginalTopic, &m.OriginalTopic)
		springInt(h, SpringOriginalPartition, 4, func(n int64) { m.OriginalPartition = int(n) }, &problems)
		springInt(h, SpringOriginalOffset, 8, func(n int64) { m.OriginalOffset = n }, &problems)
		springInt(h, SpringOriginalTimestamp, 8, func(n int64) { m.OriginalTimestamp = time.UnixMilli(n).UTC() }, &problems)
		springInt(h, SpringRetryAttempts, 4, func(n int64) { m.Attempt = int(n) }, &problems)
		text(SpringExceptionFQCN, &errType)
		text(SpringExceptionMessage, &m.ErrorMessage)
		text(SpringExceptionStacktrace, &m.ErrorStack)
		if errType == "" { // the key failed to deserialise, not the value
			text(SpringKeyExceptionFQCN, &errType)
			text(SpringKeyExceptionMessage, &m.ErrorMessage)
			text(SpringKeyExceptionStack, &m.ErrorStack)
		}
	default:
		n := stringNames[d]
		text(n.topic, &m.OriginalTopic)
		decimal(n.partition, 31, func(v int64) { m.OriginalPartition = int(v) })
		decimal(n.offset, 63, func(v int64) { m.OriginalOffset = v })
		if n.attempts != "" {
			decimal(n.attempts, 31, func(v int64) { m.Attempt = int(v) })
		}
		if n.errType != "" {
			text(n.errType, &errType)
			// Streams writes Throwable.toString(): "fqcn" or "fqcn: message".
			errType, _, _ = strings.Cut(errType, ": ")
		}
		text(n.message, &m.ErrorMessage)
		if n.stack != "" {
			text(n.stack, &m.ErrorStack)
		}
	}
	// The loop guard's count rides on the record in every dialect that
	// keeps the consumed record's headers (Spring, Connect).
	if v, ok := get(retrymeta.HeaderRedriveCount); ok {
		if n, err := strconv.Atoi(v); err == nil && n >= 0 {
			m.RedriveCount = n
		}
	}
	return m, errType, strings.Join(problems, "; ")
}

// springInt reads one of Spring's binary numbers: size bytes, big-endian,
// as java.nio.ByteBuffer writes them. Decimal text is accepted too (a
// custom HeaderNames or a hand-written record).
func springInt(h []kafka.Header, key string, size int, set func(int64), problems *[]string) {
	var raw []byte
	found := false
	for i := len(h) - 1; i >= 0; i-- {
		if h[i].Key == key {
			raw, found = h[i].Value, true
			break
		}
	}
	if !found {
		return
	}
	switch {
	case len(raw) == 4 && size == 4:
		set(int64(int32(binary.BigEndian.Uint32(raw))))
	case len(raw) == 8 && size == 8:
		set(int64(binary.BigEndian.Uint64(raw)))
	default:
		if n, err := strconv.ParseInt(string(raw), 10, 64); err == nil {
			set(n)
			return
		}
		*problems = append(*problems, fmt.Sprintf("header %s: %d bytes, want a %d-byte big-endian number", key, len(raw), size))
	}
}

// BinaryInt returns the size-byte big-endian encoding of n: how Spring
// writes its partition (4) and offset and timestamp (8) headers.
func BinaryInt(n int64, size int) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, uint64(n))
	return b[8-size:]
}

func shorten(s string) string {
	if r := []rune(s); len(r) > 40 {
		return string(r[:39]) + "…"
	}
	return s
}
