package integration_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/failure"
	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/retrymeta"
	"github.com/reeferdlq/reefer-dlq/tests/integration/harness"
	"github.com/reeferdlq/reefer-dlq/tests/integration/outcomes"
)

// orderJSON is an OrderCreated event with fields spliced in as raw JSON, so
// that a test can break exactly one thing.
func orderJSON(id, eventType, data string) string {
	return fmt.Sprintf(`{"specversion":"1.0","id":"evt-%s","source":"/reefer-dlq/integration-test","type":%q,`+
		`"time":"2026-01-02T03:04:05Z","subject":%q,"datacontenttype":"application/json","data":%s}`, id, eventType, id, data)
}

// orderData is a valid OrderCreated data object with productID and
// quantity as given (raw JSON).
func orderData(id, productID, quantity string) string {
	return fmt.Sprintf(`{"orderID":%q,"productID":%s,"customerID":"CUST-1","quantity":%s,`+
		`"pickupCity":"Rotterdam","destinationCity":"Singapore","expectedDeliveryDate":"2031-06-30"}`, id, productID, quantity)
}

// largestOrder is an otherwise valid OrderCreated whose productID pads the
// record to the largest the orders topic takes (Kafka's default
// max.message.bytes, just under 1 MiB): far above the 64 KiB events
// accept. Its poison dead letter, the record plus ~6 KiB of headers, fits
// the dead-letter topic (harness.DeadLetterMaxMessageBytes) whole.
func largestOrder(id string) []byte {
	size := retrymeta.MaxRecordSize(harness.MaxMessageBytes) - retrymeta.RecordSize(kafka.Message{Key: []byte(id)})
	empty := orderJSON(id, "OrderCreated", orderData(id, `""`, "1"))
	pad := strings.Repeat("x", size-len(empty))
	v := []byte(orderJSON(id, "OrderCreated", orderData(id, `"`+pad+`"`, "1")))
	if len(v) != size {
		panic(fmt.Sprintf("largestOrder: %d bytes", len(v)))
	}
	return v
}

// TestScenarioPoison: records that can never be processed (malformed JSON,
// an unknown event type, missing fields, a field of the wrong type, a value
// as large as the orders topic takes, invalid UTF-8) on the orders topic, and records with garbage or
// missing retry headers written straight to the retry topic, each become
// one poison dead letter whose key and value are the original's byte for
// byte and whose headers say what is wrong; the good orders produced
// before, between and after them are all allocated.
func TestScenarioPoison(t *testing.T) {
	s := harness.Start(t, harness.Options{})
	goodOrders := harness.Orders("O-GOOD", 300)

	onOrders := []struct{ key, value string }{
		{"P-MALFORMED-JSON", `{"specversion":"1.0","id":"evt-1","type":"OrderCreated",`},
		{"P-UNKNOWN-TYPE", orderJSON("P-UNKNOWN-TYPE", "OrderTeleported", `{"orderID":"P-UNKNOWN-TYPE"}`)},
		{"P-MISSING-FIELDS", orderJSON("P-MISSING-FIELDS", "OrderCreated", `{"orderID":"P-MISSING-FIELDS","productID":"P-1"}`)},
		{"P-WRONG-TYPE", orderJSON("P-WRONG-TYPE", "OrderCreated", orderData("P-WRONG-TYPE", `"P-1"`, `"ten"`))},
		{"P-LARGEST", string(largestOrder("P-LARGEST"))},
		{"P-INVALID-UTF8", orderJSON("P-INVALID-UTF8", "OrderCreated", orderData("P-INVALID-UTF8", "\"P-\xff\xfe\"", "1"))},
	}
	valid := func(id string) []byte { return []byte(orderJSON(id, "OrderCreated", orderData(id, `"P-1"`, "1"))) }
	onRetry := []kafka.Message{
		{Key: []byte("P-GARBAGE-HEADERS"), Value: valid("P-GARBAGE-HEADERS"), Headers: []kafka.Header{
			{Key: retrymeta.HeaderAttempt, Value: []byte("many")},
			{Key: retrymeta.HeaderDueAt, Value: []byte("tomorrow")},
			{Key: retrymeta.HeaderOriginalTopic, Value: []byte(s.Topics.Orders)},
			{Key: retrymeta.HeaderOriginalPartition, Value: []byte("-1")},
			{Key: retrymeta.HeaderOriginalOffset, Value: []byte("\xff")},
		}},
		{Key: []byte("P-NO-RETRY-HEADERS"), Value: valid("P-NO-RETRY-HEADERS")},
	}

	ctx := timeout(t, time.Minute)
	var poison []kafka.Message
	for _, p := range onOrders {
		poison = append(poison, kafka.Message{Topic: s.Topics.Orders, Key: []byte(p.key), Value: []byte(p.value)})
	}
	for _, m := range onRetry {
		m.Topic = s.Topics.Retry
		poison = append(poison, m)
	}
	// Good orders before, between and after the poison.
	steps := []func() error{
		func() error { return s.ProduceOrders(ctx, goodOrders[:100]...) },
		func() error { return s.Produce(ctx, poison[:len(onOrders)]...) },
		func() error { return s.ProduceOrders(ctx, goodOrders[100:200]...) },
		func() error { return s.Produce(ctx, poison[len(onOrders):]...) },
		func() error { return s.ProduceOrders(ctx, goodOrders[200:]...) },
	}
	for _, step := range steps {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}

	goodIDs := harness.IDs(goodOrders)
	var poisonIDs []string
	for _, m := range poison {
		poisonIDs = append(poisonIDs, string(m.Key))
	}
	r := settle(t, s, append(goodIDs, poisonIDs...), 2*time.Minute)
	checkConsistent(t, r, append(goodIDs, poisonIDs...))
	if got := len(r.States(goodIDs)[outcomes.Allocated]); got != len(goodIDs) {
		t.Errorf("%d of %d good orders allocated, want all", got, len(goodIDs))
	}
	for _, m := range poison {
		id := string(m.Key)
		o := r.Order(id)
		if o.State() != outcomes.DeadLettered || len(o.DeadLetters) != 1 {
			t.Errorf("%s: state %s with %d dead letters, want exactly one dead letter", id, o.State(), len(o.DeadLetters))
			continue
		}
		dl := o.DeadLetters[0]
		if dl.HeaderErr != nil {
			t.Errorf("%s: the dead letter's own headers do not parse: %v", id, dl.HeaderErr)
		}
		if dl.Meta.DLQReason != retrymeta.Poison || dl.Meta.ErrorClass != failure.Permanent || dl.Meta.ErrorMessage == "" {
			t.Errorf("%s: reason %q class %q message %q, want reason %q, class %q and a message saying what is wrong",
				id, dl.Meta.DLQReason, dl.Meta.ErrorClass, dl.Meta.ErrorMessage, retrymeta.Poison, failure.Permanent)
		}
		if !bytes.Equal(dl.Value, m.Value) {
			t.Errorf("%s: the dead letter's value (%d bytes) is not the original (%d bytes) byte for byte", id, len(dl.Value), len(m.Value))
		}
		if m.Topic == s.Topics.Orders && dl.Meta.OriginalTopic != s.Topics.Orders {
			t.Errorf("%s: x-original-topic %q, want %q", id, dl.Meta.OriginalTopic, s.Topics.Orders)
		}
		t.Logf("%s -> %s: %s", id, dl.Meta.DLQReason, dl.Meta.ErrorMessage)
	}
}
