package retrier

import (
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/segmentio/kafka-go"

	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry"
	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/failure"
	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/retrymeta"
)

func headers(kv ...string) []kafka.Header {
	h := make([]kafka.Header, 0, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		h = append(h, kafka.Header{Key: kv[i], Value: []byte(kv[i+1])})
	}
	return h
}

func ms(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }

// TestSalvageKeepsWhatCanBeRead: a dead letter of a record with broken
// retry headers keeps every header that is readable on its own, and the
// original coordinates only when all of them are.
func TestSalvageKeepsWhatCanBeRead(t *testing.T) {
	first := time.UnixMilli(1_700_000_000_000).UTC()
	tests := []struct {
		name    string
		headers []kafka.Header
		want    retrymeta.Meta
	}{
		{"nothing", nil, retrymeta.Meta{}},
		{"garbage attempt, the rest kept",
			headers(retrymeta.HeaderAttempt, "two", retrymeta.HeaderFirstFailureAt, ms(first),
				retrymeta.HeaderOriginalTopic, "orders", retrymeta.HeaderOriginalPartition, "4", retrymeta.HeaderOriginalOffset, "17",
				retrymeta.HeaderRedriveCount, "1"),
			retrymeta.Meta{FirstFailureAt: first, OriginalTopic: "orders", OriginalPartition: 4, OriginalOffset: 17, RedriveCount: 1}},
		{"garbage due time, attempt kept",
			headers(retrymeta.HeaderAttempt, "3", retrymeta.HeaderDueAt, "soon", retrymeta.HeaderErrorClass, "transient"),
			retrymeta.Meta{Attempt: 3, ErrorClass: failure.Transient}},
		{"incomplete coordinates dropped",
			headers(retrymeta.HeaderAttempt, "2", retrymeta.HeaderOriginalTopic, "orders", retrymeta.HeaderOriginalPartition, "-1",
				retrymeta.HeaderOriginalOffset, "17", retrymeta.HeaderOriginalTimestamp, ms(first)),
			retrymeta.Meta{Attempt: 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, salvage(tt.headers)); diff != "" {
				t.Errorf("salvage (-want +got):\n%s", diff)
			}
		})
	}
}

// TestDueAtSchedulesOnlyPlausibleDueTimes: the scheduler waits for a
// readable due time within the horizon; anything else is due at once, to
// be dead-lettered.
func TestDueAtSchedulesOnlyPlausibleDueTimes(t *testing.T) {
	now := time.UnixMilli(1_700_000_000_000).UTC()
	due := kafkaretry.ReleaseAt(time.Hour, func() time.Time { return now })
	tests := []struct {
		name    string
		headers []kafka.Header
		want    time.Time
	}{
		{"in a minute", headers(retrymeta.HeaderDueAt, ms(now.Add(time.Minute))), now.Add(time.Minute)},
		{"in the past", headers(retrymeta.HeaderDueAt, ms(now.Add(-time.Minute))), now.Add(-time.Minute)},
		{"exactly at the horizon", headers(retrymeta.HeaderDueAt, ms(now.Add(time.Hour))), now.Add(time.Hour)},
		{"beyond the horizon", headers(retrymeta.HeaderDueAt, ms(now.Add(time.Hour+time.Millisecond))), time.Time{}},
		{"missing", nil, time.Time{}},
		{"not a time", headers(retrymeta.HeaderDueAt, "tomorrow"), time.Time{}},
		{"last header wins", headers(retrymeta.HeaderDueAt, "garbage", retrymeta.HeaderDueAt, ms(now)), now},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := due(kafka.Message{Headers: tt.headers}); !got.Equal(tt.want) {
				t.Errorf("due at %s, want %s", got, tt.want)
			}
		})
	}
}
