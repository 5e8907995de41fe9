package dlq_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/retrymeta"
	"github.com/reeferdlq/reefer-dlq/services/dlq-cli/deadletter"
	"github.com/reeferdlq/reefer-dlq/services/dlq-cli/dlq"
	"github.com/reeferdlq/reefer-dlq/services/dlq-cli/render"
)

// foreignLetter is a dead letter as another framework writes it, byte for
// byte: the header names and encodings of its source (see
// deadletter/dialect.go for where each was checked).
type foreignLetter struct {
	dialect    deadletter.Dialect
	origTopic  string
	origPart   int
	origOffset int64
	message    string
	errType    string
	key, value []byte
}

// h is a header with a text value.
func h(k, v string) kafka.Header { return kafka.Header{Key: k, Value: []byte(v)} }

// record writes the dead letter the way its framework does. carried are
// the headers of the consumed record, which Spring and Connect keep on
// the dead letter and Streams and the share-group broker drop.
func (f foreignLetter) record(carried []kafka.Header) kafka.Message {
	var hs []kafka.Header
	part, off := strconv.Itoa(f.origPart), strconv.FormatInt(f.origOffset, 10)
	switch f.dialect {
	case deadletter.Spring:
		// DeadLetterPublishingRecoverer: the consumed record's headers,
		// then kafka_dlt-*, partition/offset/timestamp as ByteBuffer
		// putInt/putLong (big-endian).
		hs = append(hs, carried...)
		hs = append(hs,
			h(deadletter.SpringOriginalTopic, f.origTopic),
			kafka.Header{Key: deadletter.SpringOriginalPartition, Value: deadletter.BinaryInt(int64(f.origPart), 4)},
			kafka.Header{Key: deadletter.SpringOriginalOffset, Value: deadletter.BinaryInt(f.origOffset, 8)},
			kafka.Header{Key: deadletter.SpringOriginalTimestamp, Value: deadletter.BinaryInt(t0.Add(-time.Hour).UnixMilli(), 8)},
			h(deadletter.SpringOriginalTimestampType, "CreateTime"),
			h(deadletter.SpringOriginalConsumerGroup, "payments-service"),
			h(deadletter.SpringExceptionFQCN, f.errType),
			h(deadletter.SpringExceptionCauseFQCN, "java.lang.IllegalStateException"),
			h(deadletter.SpringExceptionMessage, f.message),
			h(deadletter.SpringExceptionStacktrace, "org.springframework.kafka.listener.ListenerExecutionFailedException: "+f.message+"\n\tat com.acme.Payments.on(Payments.java:42)"),
		)
	case deadletter.Connect:
		// DeadLetterQueueReporter with context headers: the consumed
		// record's headers, then __connect.errors.*, numbers as strings.
		hs = append(hs, carried...)
		hs = append(hs,
			h(deadletter.ConnectTopic, f.origTopic), h(deadletter.ConnectPartition, part), h(deadletter.ConnectOffset, off),
			h(deadletter.ConnectConnectorName, "jdbc-sink"), h(deadletter.ConnectTaskID, "0"), h(deadletter.ConnectStage, "VALUE_CONVERTER"),
			h(deadletter.ConnectClassName, "io.confluent.connect.avro.AvroConverter"),
			h(deadletter.ConnectExceptionClass, f.errType), h(deadletter.ConnectExceptionMessage, f.message),
			h(deadletter.ConnectExceptionStack, f.errType+": "+f.message+"\n\tat org.apache.kafka.connect.runtime.WorkerSinkTask.convertValue(WorkerSinkTask.java:540)"),
		)
	case deadletter.Streams:
		// ExceptionHandlerUtils: a new record with only __streams.errors.*.
		hs = append(hs,
			h(deadletter.StreamsException, f.errType+": "+f.message), h(deadletter.StreamsMessage, f.message),
			h(deadletter.StreamsStacktrace, f.errType+": "+f.message+"\n\tat org.apache.kafka.streams.processor.internals.RecordDeserializer.deserialize"),
			h(deadletter.StreamsTopic, f.origTopic), h(deadletter.StreamsPartition, part), h(deadletter.StreamsOffset, off),
		)
	case deadletter.ShareGroup:
		// The broker's share-group DLQ writer: only __dlq.errors.*.
		hs = append(hs,
			h(deadletter.ShareTopic, f.origTopic), h(deadletter.SharePartition, part), h(deadletter.ShareOffset, off),
			h(deadletter.ShareGroupID, "billing"), h(deadletter.ShareDeliveryCount, "5"), h(deadletter.ShareMessage, f.message),
		)
	}
	return kafka.Message{Key: f.key, Value: f.value, Headers: hs, Time: t0}
}

// foreignSeed is one dead letter of each foreign dialect, whose values are
// not this suite's events (one is binary: Avro's magic byte and a schema
// id), and one raw record nothing is known about.
func foreignSeed() []foreignLetter {
	return []foreignLetter{
		{deadletter.Spring, "payments", 2, 4_294_967_301, "Failed to deserialize: amount is not a number", "org.springframework.kafka.listener.ListenerExecutionFailedException", []byte("pay-17"), []byte(`{"amount":"ten"}`)},
		{deadletter.Connect, "jdbc-in", 1, 88, "Unknown magic byte!", "org.apache.kafka.common.errors.SerializationException", []byte("row-9"), []byte{0x00, 0x00, 0x00, 0x00, 0x2a, 0xff, 0xfe, 0x01}},
		{deadletter.Streams, "clicks", 0, 12, "Unexpected character ('<' (code 60))", "org.apache.kafka.common.errors.SerializationException", []byte("u-3"), []byte("<click/>")},
		{deadletter.ShareGroup, "tasks", 3, 7, "Offset delivery count exceeded the threshold.", "", []byte("task-1"), []byte(`{"task":1}`)},
	}
}

func (c *cluster) ensureTopics(topics ...string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, tp := range topics {
		if err := c.log.EnsureTopic(ctx, tp, 4, nil); err != nil {
			c.t.Fatalf("create %s: %v", tp, err)
		}
	}
}

func (c *cluster) appendDead(msgs ...kafka.Message) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.log.AppendTo(ctx, dlqTopic, 0, msgs); err != nil {
		c.t.Fatalf("append dead letters: %v", err)
	}
}

func TestEveryDialectListsItsOriginRedrivesToItAndIsLoopGuarded(t *testing.T) {
	c := newCluster(t)
	seed := foreignSeed()
	c.ensureTopics("payments", "jdbc-in", "clicks", "tasks")
	var msgs []kafka.Message
	for _, f := range seed {
		msgs = append(msgs, f.record(nil))
	}
	raw := kafka.Message{Key: []byte("mystery"), Value: []byte("??"), Headers: []kafka.Header{h("x-app", "legacy")}, Time: t0}
	c.appendDead(append(msgs, raw)...)

	// list -o json: the same model whatever wrote the record.
	r := c.run("list", "-o", "json")
	var rows []render.Row
	if err := json.Unmarshal([]byte(r.stdout), &rows); err != nil || r.code != dlq.ExitOK || len(rows) != len(seed)+1 {
		t.Fatalf("list -o json: %v\n%s", err, r)
	}
	for i, f := range seed {
		row := rows[i]
		if row.Dialect != string(f.dialect) || row.Original == nil || row.Original.Topic != f.origTopic ||
			row.Original.Partition != f.origPart || row.Original.Offset != f.origOffset ||
			row.ErrorMessage != f.message || row.ErrorType != f.errType {
			t.Errorf("%s: listed as %+v (original %+v), want origin %s %d:%d, message %q, type %q",
				f.dialect, row, row.Original, f.origTopic, f.origPart, f.origOffset, f.message, f.errType)
		}
	}
	if last := rows[len(seed)]; last.Dialect != string(deadletter.Raw) || last.Original != nil {
		t.Errorf("raw record: %+v", last)
	}
	if f := seed[0]; rows[0].Original.Timestamp == nil || !rows[0].Original.Timestamp.Equal(t0.Add(-time.Hour)) {
		t.Errorf("%s: binary original timestamp decoded as %v", f.dialect, rows[0].Original.Timestamp)
	}
	if rows[3].Attempts != 5 {
		t.Errorf("share group: delivery count read as %d attempts, want 5", rows[3].Attempts)
	}

	// The filters work across dialects.
	for _, tc := range []struct {
		args []string
		want int
	}{
		{[]string{"--written-by", "spring"}, 1},
		{[]string{"--original-topic", "clicks"}, 1},
		{[]string{"--error-class", "SerializationException"}, 2},
		{[]string{"--contains", "magic byte"}, 1},
	} {
		if got, r := c.listPositions(tc.args...); len(got) != tc.want {
			t.Errorf("list %v: %d letters, want %d\n%s", tc.args, len(got), tc.want, r)
		}
	}

	// --to retry would feed a foreign record to this suite's retry service.
	if r := c.run("redrive", "--written-by", "spring", "--yes"); !strings.Contains(r.stderr, "send it back with --to original") {
		t.Errorf("redrive --to retry of a spring letter: %s", r)
	}

	// Each back to the topic its own headers name, key and value byte for
	// byte, without the dialect's dead-letter headers.
	r = c.run("redrive", "--to", "original", "--max-redrives", "1", "--yes")
	if r.code != dlq.ExitOK || !strings.Contains(r.stdout, "redriven 4 of 5") {
		t.Fatalf("redrive --to original: %s", r)
	}
	for _, f := range seed {
		got := c.records(f.origTopic)
		if len(got) != 1 || !bytes.Equal(got[0].Key, f.key) || !bytes.Equal(got[0].Value, f.value) {
			t.Fatalf("%s: %s holds %d records (first %+v), want the dead letter's key and value", f.dialect, f.origTopic, len(got), got)
		}
		for _, x := range got[0].Headers {
			if deadletter.IsDialectHeader(x.Key) {
				t.Errorf("%s: the copy kept the dead-letter header %s", f.dialect, x.Key)
			}
		}
		if v, _ := retrymeta.Get(got[0].Headers, retrymeta.HeaderRedriveCount); v != "1" {
			t.Errorf("%s: copy's %s = %q, want 1", f.dialect, retrymeta.HeaderRedriveCount, v)
		}

		// The consumer fails on it again and its framework dead-letters
		// it: the new letter's origin is where the copy landed.
		again := f
		again.origPart, again.origOffset = got[0].Partition, got[0].Offset
		c.appendDead(again.record(got[0].Headers))
	}

	// The second redrive is refused by the loop guard, in every dialect:
	// Spring and Connect carry x-dlq-redrive-count on the record, Streams
	// and share groups drop it and the resolution log's lineage counts.
	r = c.run("redrive", "--to", "original", "--max-redrives", "1", "--yes")
	if got := strings.Count(r.stderr, "loop guard"); got != len(seed) {
		t.Errorf("second redrive: %d loop-guard refusals, want %d\n%s", got, len(seed), r)
	}
	for _, f := range seed {
		if n := len(c.records(f.origTopic)); n != 1 {
			t.Errorf("%s: %d records on %s after the refused redrive, want 1", f.dialect, n, f.origTopic)
		}
	}
}

func TestDialectCanBeForced(t *testing.T) {
	c := newCluster(t)
	f := foreignSeed()[2]
	c.appendDead(f.record(nil))
	var rows []render.Row
	r := c.run("list", "-o", "json", "--dialect", "raw")
	if err := json.Unmarshal([]byte(r.stdout), &rows); err != nil || len(rows) != 1 || rows[0].Dialect != "raw" || rows[0].Original != nil {
		t.Errorf("--dialect raw: %v %+v\n%s", err, rows, r)
	}
	r = c.run("show", "0:0")
	for _, want := range []string{"dialect              streams", "original topic", "exception", "Stack trace"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("show of a streams letter lacks %q:\n%s", want, r.stdout)
		}
	}
}

func TestSpringBinaryHeadersAreDecodedInShow(t *testing.T) {
	c := newCluster(t)
	c.appendDead(foreignSeed()[0].record(nil))
	r := c.run("show", "0:0")
	for _, want := range []string{"original partition", "base64:AAAAAg== (2)", "(4294967301)", "(2026-01-02T02:04:05.000Z)", "payments 2:4294967301"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("show lacks %q:\n%s", want, r.stdout)
		}
	}
}
