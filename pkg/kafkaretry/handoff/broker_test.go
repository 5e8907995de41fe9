package handoff_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/failure"
	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/handoff"
	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/retrymeta"
	"github.com/reeferdlq/reefer-dlq/pkg/platform/devbroker"
	"github.com/reeferdlq/reefer-dlq/pkg/platform/kafkaclient"
)

// brokerRouter starts the embedded broker, whose topics keep Kafka's
// default max.message.bytes (1,048,588), and returns a Router writing to
// it through the services' writer.
func brokerRouter(t *testing.T) (*handoff.Router, *devbroker.Broker, kafkaclient.Config) {
	t.Helper()
	b, err := devbroker.Start(t.Context(), devbroker.Config{Topics: map[string]int{
		"orders": 1, "containers": 1, "order-retries": 1, "order-dead-letter": 1,
	}})
	if err != nil {
		t.Fatalf("start broker: %v", err)
	}
	t.Cleanup(func() { _ = b.Close() })
	cfg := kafkaclient.Config{Brokers: []string{b.Addr()}, ClientID: t.Name()}
	w, err := cfg.NewWriter("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Close() })
	r := newRouter(w)
	r.Now = nil
	return r, b, cfg
}

// readAll returns every record of a one-partition topic.
func readAll(t *testing.T, cfg kafkaclient.Config, topic string) []kafka.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	c := &kafka.Client{Addr: kafka.TCP(cfg.Brokers...)}
	offsets, err := c.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: {kafka.LastOffsetOf(0)}}})
	if err != nil {
		t.Fatal(err)
	}
	end := offsets.Topics[topic][0].LastOffset
	if end == 0 {
		return nil
	}
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: cfg.Brokers, Topic: topic, Partition: 0, MaxBytes: 16 << 20, MaxWait: 250 * time.Millisecond})
	defer r.Close()
	var out []kafka.Message
	for int64(len(out)) < end {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			t.Fatalf("read %s: %v", topic, err)
		}
		out = append(out, m)
	}
	return out
}

// bigOrder is a record of the orders topic whose value makes it just fit
// that topic, so that it does not fit any other once the hand-off adds
// its headers.
func bigOrder(t *testing.T) kafka.Message {
	t.Helper()
	in := orderRecord(t, "O-big", header(retrymeta.HeaderTraceParent, traceparent))
	pad := retrymeta.MaxRecordSize(0) - retrymeta.RecordSize(in) - 8
	in.Value = append(bytes.TrimSuffix(in.Value, []byte("}")), []byte(`,"pad":"`+strings.Repeat("x", pad-10)+`"}`)...)
	if size := retrymeta.RecordSize(in); size > retrymeta.MaxRecordSize(0) {
		t.Fatalf("the record is %d bytes, above what orders takes", size)
	}
	return in
}

// A record that the orders topic took, but that the retry topic refuses
// once it carries the retry headers, must not be retried for ever (its
// partition would never commit again). It is dead-lettered as oversize
// with its key, its size and as much of its value as fits.
func TestOversizeRecordIsDeadLetteredInsteadOfBlockingThePartition(t *testing.T) {
	r, _, cfg := brokerRouter(t)
	in := bigOrder(t)

	// The broker really takes it on the orders topic.
	w, err := cfg.NewWriter("")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.WriteMessages(t.Context(), kafka.Message{Topic: "orders", Key: in.Key, Value: in.Value, Headers: in.Headers}); err != nil {
		t.Fatalf("the orders topic refuses the record: %v", err)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	d, err := r.Fail(ctx, in, retrymeta.Meta{}, failure.NewTransient("http-503", errors.New("inventory unavailable")))
	if err != nil {
		t.Fatalf("Fail: %v (the hand-off is stuck on a record retrying cannot write)", err)
	}
	if d.Route != handoff.RouteDeadLetter || d.Reason != "oversize" {
		t.Errorf("decision = %s/%s, want dead-letter/oversize", d.Route, d.Reason)
	}
	if got := readAll(t, cfg, "order-retries"); len(got) != 0 {
		t.Errorf("%d records on the retry topic, want none", len(got))
	}
	dls := readAll(t, cfg, "order-dead-letter")
	if len(dls) != 1 {
		t.Fatalf("%d dead letters, want 1", len(dls))
	}
	dl := dls[0]
	h := func(k string) string { v, _ := retrymeta.Get(dl.Headers, k); return v }
	if string(dl.Key) != string(in.Key) || h("x-dlq-reason") != "oversize" ||
		h("x-dlq-original-size") != strconv.Itoa(len(in.Value)) || h(retrymeta.HeaderTraceParent) != traceparent ||
		h(retrymeta.HeaderOriginalTopic) != "orders" || h(retrymeta.HeaderErrorClass) != "transient" {
		t.Errorf("dead letter key %q, headers %v", dl.Key, dl.Headers)
	}
	if len(dl.Value) == 0 || len(dl.Value) >= len(in.Value) || !bytes.HasPrefix(in.Value, dl.Value) {
		t.Errorf("dead letter value: %d bytes, want a non-empty prefix of the %d-byte original", len(dl.Value), len(in.Value))
	}
}

// When the broker's limit is below what the Router was told, the broker's
// refusal is the signal: the record still ends as an oversize dead letter,
// without its value if even the dead-letter topic refuses the cut one.
func TestBrokerRefusalForSizeEndsAsOversizeDeadLetter(t *testing.T) {
	r, _, cfg := brokerRouter(t)
	r.MaxMessageBytes = map[string]int{"order-retries": 8 << 20, "order-dead-letter": 8 << 20}
	in := orderRecord(t, "O-huge")
	in.Value = append(in.Value, bytes.Repeat([]byte(" "), 2<<20)...)

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	d, err := r.Fail(ctx, in, retrymeta.Meta{}, failure.NewTransient("http-503", errors.New("inventory unavailable")))
	if err != nil {
		t.Fatalf("Fail: %v", err)
	}
	if d.Route != handoff.RouteDeadLetter || d.Reason != "oversize" {
		t.Errorf("decision = %s/%s, want dead-letter/oversize", d.Route, d.Reason)
	}
	dls := readAll(t, cfg, "order-dead-letter")
	if len(dls) != 1 {
		t.Fatalf("%d dead letters, want 1", len(dls))
	}
	if v, _ := retrymeta.Get(dls[0].Headers, "x-dlq-original-size"); v != strconv.Itoa(len(in.Value)) || len(dls[0].Value) != 0 {
		t.Errorf("dead letter: original size %q, value %d bytes; want %d and 0", v, len(dls[0].Value), len(in.Value))
	}
}

// A dead-letter topic the broker does not authorise cannot be fixed by
// retrying: the Router reports it (an ERROR log naming the topic, a failing
// readiness check, OnChange for the gauge) until a write succeeds again.
func TestUnwritableDeadLetterTopicIsReportedLoudly(t *testing.T) {
	r, b, _ := brokerRouter(t)
	// The Blockage logs and calls OnChange in the writing goroutine: this one.
	var logs bytes.Buffer
	changes := map[string][]bool{}
	r.Blockage = &handoff.Blockage{
		Log:      slog.New(slog.NewTextHandler(&logs, nil)),
		OnChange: func(topic string, blocked bool) { changes[topic] = append(changes[topic], blocked) },
	}
	fault := b.Cluster().Fault(kfake.Fault{
		Keys: []kmsg.Key{kmsg.Produce}, Topic: "order-dead-letter", Err: kerr.TopicAuthorizationFailed, Count: -1,
	})
	in := orderRecord(t, "O-1")
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()

	_, err := r.Poison(ctx, in, retrymeta.Meta{}, errors.New("value does not decode"))
	if err == nil {
		t.Fatal("Poison succeeded although the broker refuses the dead-letter topic")
	}
	if got := failure.ClassOf(err); got != failure.Config {
		t.Errorf("class of %v = %q, want config", err, got)
	}
	if err := r.Blockage.Check(ctx); err == nil || !strings.Contains(err.Error(), "order-dead-letter") {
		t.Errorf("readiness check = %v, want a failure naming order-dead-letter", err)
	}
	if !strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), "topic=order-dead-letter") {
		t.Errorf("no ERROR log naming the topic:\n%s", logs.String())
	}

	fault.Remove()
	if _, err := r.Poison(ctx, in, retrymeta.Meta{}, errors.New("value does not decode")); err != nil {
		t.Fatalf("Poison after the fault: %v", err)
	}
	if err := r.Blockage.Check(ctx); err != nil {
		t.Errorf("readiness still failing after a successful write: %v", err)
	}
	if got := changes["order-dead-letter"]; len(got) != 2 || !got[0] || got[1] {
		t.Errorf("OnChange calls for order-dead-letter = %v, want [true false]", got)
	}
}
