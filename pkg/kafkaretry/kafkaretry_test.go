package kafkaretry_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry"
	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/retrymeta"
)

func TestChainRunsTheFirstMiddlewareOutermost(t *testing.T) {
	var calls []string
	mw := func(name string) kafkaretry.Middleware {
		return func(next kafkaretry.Handler) kafkaretry.Handler {
			return func(ctx context.Context, msg kafka.Message) error {
				calls = append(calls, name)
				return next(ctx, msg)
			}
		}
	}
	h := kafkaretry.Chain(func(context.Context, kafka.Message) error { calls = append(calls, "handler"); return nil }, mw("a"), mw("b"))
	if err := h(context.Background(), kafka.Message{}); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(calls, ","); got != "a,b,handler" {
		t.Errorf("calls = %s, want a,b,handler", got)
	}
}

func TestStageRunRefusesMissingParts(t *testing.T) {
	err := (&kafkaretry.Stage{}).Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "Reader, Handler and Router are required") {
		t.Errorf("Run of an empty Stage = %v, want the missing parts named", err)
	}
}

func TestReleaseAtHoldsOnlyPlausibleDueTimes(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	due := func(at string) kafka.Message {
		return kafka.Message{Headers: []kafka.Header{{Key: retrymeta.HeaderDueAt, Value: []byte(at)}}}
	}
	release := kafkaretry.ReleaseAt(time.Hour, func() time.Time { return now })
	tests := []struct {
		name string
		msg  kafka.Message
		want time.Time
	}{
		{"due in a minute: held until then", due(strconv.FormatInt(now.Add(time.Minute).UnixMilli(), 10)), now.Add(time.Minute)},
		{"no header: at once", kafka.Message{}, time.Time{}},
		{"unreadable: at once", due("soon"), time.Time{}},
		{"beyond the bound: at once", due(strconv.FormatInt(now.Add(2*time.Hour).UnixMilli(), 10)), time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := release(tt.msg); !got.Equal(tt.want) {
				t.Errorf("ReleaseAt = %v, want %v", got, tt.want)
			}
		})
	}
}
