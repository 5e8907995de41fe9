package deadletter_test

import (
	"errors"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/failure"
	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/retrymeta"
	"github.com/reeferdlq/reefer-dlq/services/dlq-cli/deadletter"
)

func TestParsePosition(t *testing.T) {
	tests := []struct {
		in      string
		want    deadletter.Position
		wantErr bool
	}{
		{"0:15", deadletter.Position{Partition: 0, Offset: 15}, false},
		{"12:0", deadletter.Position{Partition: 12, Offset: 0}, false},
		{"O-1001", deadletter.Position{}, true},
		{"1:", deadletter.Position{}, true},
		{":1", deadletter.Position{}, true},
		{"-1:3", deadletter.Position{}, true},
		{"1:-3", deadletter.Position{}, true},
		{"a:b", deadletter.Position{}, true},
	}
	for _, tc := range tests {
		got, err := deadletter.ParsePosition(tc.in)
		if (err != nil) != tc.wantErr {
			t.Errorf("ParsePosition(%q) error = %v, want error %t", tc.in, err, tc.wantErr)
			continue
		}
		if err != nil && !errors.Is(err, deadletter.ErrNotPosition) {
			t.Errorf("ParsePosition(%q) error %v does not wrap ErrNotPosition", tc.in, err)
		}
		if got != tc.want {
			t.Errorf("ParsePosition(%q) = %v, want %v", tc.in, got, tc.want)
		}
		if err == nil && got.String() != tc.in {
			t.Errorf("Position.String() = %q, want %q", got.String(), tc.in)
		}
	}
}

func TestFromMessageIdentifiesTheOrder(t *testing.T) {
	tests := []struct {
		name, key, value, wantOrder, wantType string
	}{
		{"subject", "O-1", `{"type":"OrderCreated","subject":"O-1","data":{"orderID":"O-1"}}`, "O-1", "OrderCreated"},
		{"data.orderID without subject", "C-9", `{"type":"ContainerAssignedToOrder","data":{"orderID":"O-2"}}`, "O-2", "ContainerAssignedToOrder"},
		{"not JSON: the key", "O-3", `{broken`, "O-3", ""},
		{"subject of the wrong type: the key", "O-4", `{"subject":4}`, "O-4", ""},
	}
	for _, tc := range tests {
		l := deadletter.FromMessage(kafka.Message{Key: []byte(tc.key), Value: []byte(tc.value)})
		if l.OrderID != tc.wantOrder || l.EventType != tc.wantType {
			t.Errorf("%s: order %q type %q, want %q %q", tc.name, l.OrderID, l.EventType, tc.wantOrder, tc.wantType)
		}
	}
}

func TestFromMessageKeepsWhatGoodHeadersSayWhenOneIsMalformed(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	h := retrymeta.Apply(nil, retrymeta.Meta{
		Attempt: 5, ErrorClass: failure.Transient, ErrorMessage: "http-503",
		OriginalTopic: "orders", DLQReason: retrymeta.MaxAttempts, DeadLetteredAt: at,
	})
	h = append(h, kafka.Header{Key: retrymeta.HeaderRedriveCount, Value: []byte("lots")})
	l := deadletter.FromMessage(kafka.Message{Topic: "order-dead-letter", Key: []byte("O-1"), Headers: h})
	if l.Malformed == "" {
		t.Fatal("a malformed x-dlq-redrive-count is not reported")
	}
	if l.Meta.DLQReason != retrymeta.MaxAttempts || l.Meta.Attempt != 5 || !l.DeadLetteredAt().Equal(at) {
		t.Errorf("the good headers were lost: %+v", l.Meta)
	}
	if l.Transient() {
		t.Error("a malformed letter counts as transient: watch would redrive it")
	}
	good := deadletter.FromMessage(kafka.Message{Headers: h[:len(h)-1]})
	if good.Malformed != "" || !good.Transient() {
		t.Errorf("well-formed letter: malformed %q, transient %t", good.Malformed, good.Transient())
	}
}
