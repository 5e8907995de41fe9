package deadletter_test

import (
	"testing"

	"github.com/segmentio/kafka-go"

	"github.com/reeferdlq/reefer-dlq/services/dlq-cli/deadletter"
)

func TestDetectPrefersTheLatestFailuresFamily(t *testing.T) {
	hdr := func(keys ...string) []kafka.Header {
		out := make([]kafka.Header, len(keys))
		for i, k := range keys {
			out[i] = kafka.Header{Key: k, Value: []byte("1")}
		}
		return out
	}
	tests := []struct {
		name string
		h    []kafka.Header
		want deadletter.Dialect
	}{
		{"this suite", hdr("x-retry-attempt", "x-dlq-reason"), deadletter.Reefer},
		{"spring", hdr(deadletter.SpringOriginalTopic), deadletter.Spring},
		{"spring after a dlq redrive", hdr("x-original-topic", "x-dlq-redrive-count", deadletter.SpringExceptionFQCN), deadletter.Spring},
		{"connect", hdr(deadletter.ConnectStage), deadletter.Connect},
		{"streams", hdr(deadletter.StreamsException), deadletter.Streams},
		{"share group", hdr(deadletter.ShareGroupID), deadletter.ShareGroup},
		{"nothing known", hdr("traceparent", "x-app"), deadletter.Raw},
		{"no headers", nil, deadletter.Raw},
	}
	for _, tc := range tests {
		if got := deadletter.Detect(tc.h); got != tc.want {
			t.Errorf("%s: Detect = %s, want %s", tc.name, got, tc.want)
		}
	}
}

func TestSpringNumbersOfTheWrongSizeAreMalformedNotWrong(t *testing.T) {
	l := deadletter.FromMessage(kafka.Message{Headers: []kafka.Header{
		{Key: deadletter.SpringOriginalTopic, Value: []byte("payments")},
		{Key: deadletter.SpringOriginalPartition, Value: []byte{0, 2}}, // 2 bytes, want 4
		{Key: deadletter.SpringOriginalOffset, Value: deadletter.BinaryInt(7, 8)},
	}})
	if l.Dialect != deadletter.Spring || l.Malformed == "" || l.Meta.OriginalOffset != 7 || l.Meta.OriginalTopic != "payments" {
		t.Errorf("letter: dialect %s, malformed %q, meta %+v", l.Dialect, l.Malformed, l.Meta)
	}
}
