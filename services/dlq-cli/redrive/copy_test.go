package redrive_test

import (
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/segmentio/kafka-go"

	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/failure"
	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/retrymeta"
	"github.com/reeferdlq/reefer-dlq/services/dlq-cli/deadletter"
	"github.com/reeferdlq/reefer-dlq/services/dlq-cli/redrive"
)

var (
	at  = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	now = at.Add(time.Hour)
)

// deadLetter builds a letter the way the retry service dead-letters one.
func deadLetter(redrives int, extra ...kafka.Header) deadletter.Letter {
	h := retrymeta.Apply([]kafka.Header{{Key: "traceparent", Value: []byte("00-abc-def-01")}, {Key: "x-tenant", Value: []byte("acme")}}, retrymeta.Meta{
		Attempt:           5,
		DueAt:             at.Add(-time.Minute),
		FirstFailureAt:    at.Add(-10 * time.Minute),
		LastFailureAt:     at,
		ErrorClass:        failure.Transient,
		ErrorMessage:      "http-503",
		OriginalTopic:     "orders",
		OriginalPartition: 4,
		OriginalOffset:    99,
		OriginalTimestamp: at.Add(-time.Hour),
		ErrorStack:        "goroutine 1",
		DLQReason:         retrymeta.MaxAttempts,
		DeadLetteredAt:    at,
		RedriveCount:      redrives,
	})
	h = append(h, extra...)
	return deadletter.FromMessage(kafka.Message{Topic: "order-dead-letter", Partition: 1, Offset: 42, Key: []byte("O-1"), Value: []byte(`{"v":1}`), Headers: h, Time: at})
}

func headers(m kafka.Message) map[string]string {
	out := map[string]string{}
	for _, h := range m.Headers {
		if _, dup := out[h.Key]; dup {
			out[h.Key] += "|" + string(h.Value)
			continue
		}
		out[h.Key] = string(h.Value)
	}
	return out
}

func ms(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }

func TestCopyRewritesHeadersForTheTarget(t *testing.T) {
	tests := []struct {
		name       string
		letter     deadletter.Letter
		to         redrive.Target
		editedFrom string
		wantTopic  string
		want       map[string]string
	}{
		{
			name: "to retry: attempts reset, due now, dead-letter headers dropped", letter: deadLetter(0), to: redrive.ToRetry, wantTopic: "order-retries",
			want: map[string]string{
				"traceparent": "00-abc-def-01", "x-tenant": "acme",
				retrymeta.HeaderAttempt: "0", retrymeta.HeaderDueAt: ms(now),
				retrymeta.HeaderFirstFailureAt: ms(at.Add(-10 * time.Minute)), retrymeta.HeaderLastFailureAt: ms(at),
				retrymeta.HeaderErrorClass: "transient", retrymeta.HeaderErrorMessage: "http-503",
				retrymeta.HeaderOriginalTopic: "orders", retrymeta.HeaderOriginalPartition: "4", retrymeta.HeaderOriginalOffset: "99",
				retrymeta.HeaderOriginalTimestamp: ms(at.Add(-time.Hour)), retrymeta.HeaderRedriveCount: "1",
			},
		},
		{
			name: "to original: a fresh record with its provenance", letter: deadLetter(2), to: redrive.ToOriginal, wantTopic: "orders",
			want: map[string]string{
				"traceparent": "00-abc-def-01", "x-tenant": "acme",
				retrymeta.HeaderOriginalTopic: "orders", retrymeta.HeaderOriginalPartition: "4", retrymeta.HeaderOriginalOffset: "99",
				retrymeta.HeaderOriginalTimestamp: ms(at.Add(-time.Hour)), retrymeta.HeaderRedriveCount: "3",
			},
		},
		{
			name: "edited, to original", letter: deadLetter(0), to: redrive.ToOriginal, editedFrom: "order-dead-letter/1/42", wantTopic: "orders",
			want: map[string]string{
				"traceparent": "00-abc-def-01", "x-tenant": "acme",
				retrymeta.HeaderOriginalTopic: "orders", retrymeta.HeaderOriginalPartition: "4", retrymeta.HeaderOriginalOffset: "99",
				retrymeta.HeaderOriginalTimestamp: ms(at.Add(-time.Hour)), retrymeta.HeaderRedriveCount: "1",
				retrymeta.HeaderEditedFrom: "order-dead-letter/1/42",
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := redrive.Copy(tc.letter, tc.to, "order-retries", now, tc.editedFrom)
			if got.Topic != tc.wantTopic {
				t.Errorf("topic %q, want %q", got.Topic, tc.wantTopic)
			}
			if string(got.Key) != "O-1" || string(got.Value) != `{"v":1}` {
				t.Errorf("key or value changed: %q %q", got.Key, got.Value)
			}
			if diff := cmp.Diff(tc.want, headers(got)); diff != "" {
				t.Errorf("headers (-want +got):\n%s", diff)
			}
			// The copy reads back as what the retry service expects.
			if tc.to == redrive.ToRetry {
				m, err := retrymeta.ParseRetry(got.Headers)
				if err != nil || m.Attempt != 0 || !m.DueAt.Equal(now) {
					t.Errorf("ParseRetry of the copy: %+v, %v", m, err)
				}
			}
		})
	}
}

func TestCheckRefusesWhatCannotBeRedriven(t *testing.T) {
	noOrigin := deadLetter(0)
	noOrigin.Meta.OriginalTopic = ""
	tests := []struct {
		name        string
		letter      deadletter.Letter
		to          redrive.Target
		max         int
		wantErr     bool
		wantLoopErr bool
	}{
		{"fresh", deadLetter(0), redrive.ToRetry, 3, false, false},
		{"below the limit", deadLetter(2), redrive.ToRetry, 3, false, false},
		{"at the limit", deadLetter(3), redrive.ToRetry, 3, true, true},
		{"above the limit", deadLetter(7), redrive.ToOriginal, 3, true, true},
		{"guard off", deadLetter(7), redrive.ToRetry, 0, false, false},
		{"malformed headers", deadLetter(0, kafka.Header{Key: retrymeta.HeaderRedriveCount, Value: []byte("many")}), redrive.ToRetry, 3, true, false},
		{"to original without an original topic", noOrigin, redrive.ToOriginal, 3, true, false},
		{"to retry without an original topic", noOrigin, redrive.ToRetry, 3, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := redrive.Check(tc.letter, tc.to, tc.max)
			if (err != nil) != tc.wantErr {
				t.Fatalf("Check = %v, want error %t", err, tc.wantErr)
			}
			if got := errors.Is(err, redrive.ErrLoopGuard); got != tc.wantLoopErr {
				t.Errorf("errors.Is(err, ErrLoopGuard) = %t, want %t (%v)", got, tc.wantLoopErr, err)
			}
		})
	}
}

func TestEditedFromNamesTheDeadLetter(t *testing.T) {
	if got := redrive.EditedFrom(deadLetter(0)); got != "order-dead-letter/1/42" {
		t.Errorf("EditedFrom = %q", got)
	}
}

func TestParseTarget(t *testing.T) {
	for in, ok := range map[string]bool{"retry": true, "original": true, "orders": false, "": false} {
		if _, err := redrive.ParseTarget(in); (err == nil) != ok {
			t.Errorf("ParseTarget(%q) error = %v", in, err)
		}
	}
}
