package retrymeta_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"github.com/segmentio/kafka-go"

	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/failure"
	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/retrymeta"
)

const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

var t0 = time.Date(2025, 3, 4, 5, 6, 7, 890e6, time.UTC)

func fullMeta() retrymeta.Meta {
	return retrymeta.Meta{
		Attempt:           3,
		DueAt:             t0.Add(4 * time.Second),
		FirstFailureAt:    t0.Add(-10 * time.Second),
		LastFailureAt:     t0,
		ErrorClass:        failure.Transient,
		ErrorMessage:      "allocate order o-1: http-503: unexpected status 503 Service Unavailable",
		OriginalTopic:     "orders",
		OriginalPartition: 0,
		OriginalOffset:    0,
		OriginalTimestamp: t0.Add(-time.Minute),
		ErrorStack:        "main.run\n\t/src/main.go:12\n",
		DLQReason:         retrymeta.MaxAttempts,
		DeadLetteredAt:    t0.Add(time.Second),
		RedriveCount:      2,
		EditedFrom:        "order-dead-letter/0/42",
	}
}

func userHeaders() []kafka.Header {
	return []kafka.Header{
		{Key: retrymeta.HeaderTraceParent, Value: []byte(traceparent)},
		{Key: "content-type", Value: []byte("application/cloudevents+json")},
		{Key: "x-tenant", Value: []byte("acme")},
	}
}

func TestApplyThenParseRoundTripsEveryField(t *testing.T) {
	for name, m := range map[string]retrymeta.Meta{
		"every field":          fullMeta(),
		"first failure":        {Attempt: 1, DueAt: t0, FirstFailureAt: t0, LastFailureAt: t0, ErrorClass: failure.Transient, ErrorMessage: "timeout", OriginalTopic: "orders", OriginalPartition: 5, OriginalOffset: 1 << 40},
		"nothing":              {},
		"epoch zero timestamp": {OriginalTopic: "orders", OriginalTimestamp: time.UnixMilli(0).UTC()},
	} {
		t.Run(name, func(t *testing.T) {
			h := retrymeta.Apply(userHeaders(), m)
			got, err := retrymeta.Parse(h)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(m, got); diff != "" {
				t.Errorf("round trip (-applied +parsed):\n%s", diff)
			}
		})
	}
}

func TestApplyWritesTheContractsWireFormat(t *testing.T) {
	h := retrymeta.Apply(nil, fullMeta())
	want := []kafka.Header{
		{Key: "x-retry-attempt", Value: []byte("3")},
		{Key: "x-retry-due-at", Value: []byte("1741064771890")},
		{Key: "x-retry-first-failure-at", Value: []byte("1741064757890")},
		{Key: "x-retry-last-failure-at", Value: []byte("1741064767890")},
		{Key: "x-error-class", Value: []byte("transient")},
		{Key: "x-error-message", Value: []byte(fullMeta().ErrorMessage)},
		{Key: "x-original-topic", Value: []byte("orders")},
		{Key: "x-original-partition", Value: []byte("0")},
		{Key: "x-original-offset", Value: []byte("0")},
		{Key: "x-original-timestamp", Value: []byte("1741064707890")},
		{Key: "x-error-stack", Value: []byte(fullMeta().ErrorStack)},
		{Key: "x-dlq-reason", Value: []byte("max-attempts")},
		{Key: "x-dlq-dead-lettered-at", Value: []byte("1741064768890")},
		{Key: "x-dlq-redrive-count", Value: []byte("2")},
		{Key: "x-dlq-edited-from", Value: []byte("order-dead-letter/0/42")},
	}
	if diff := cmp.Diff(want, h); diff != "" {
		t.Errorf("headers (-want +got):\n%s", diff)
	}
}

func TestApplyKeepsUnrelatedHeadersAndTraceparentInOrder(t *testing.T) {
	in := []kafka.Header{
		{Key: "x-tenant", Value: []byte("acme")},
		{Key: "x-retry-attempt", Value: []byte("7")},
		{Key: retrymeta.HeaderTraceParent, Value: []byte(traceparent)},
		{Key: "x-error-message", Value: []byte("old")},
		{Key: "x-retry-legacy-field", Value: []byte("from an older version")},
		{Key: "X-Retry-Attempt", Value: []byte("not ours: header keys are case-sensitive")},
		{Key: "x-dlq-whatever", Value: []byte("stale")},
		{Key: "x-tenant", Value: []byte("second value kept too")},
	}
	out := retrymeta.Apply(in, retrymeta.Meta{Attempt: 1, DueAt: t0, OriginalTopic: "orders"})
	var kept []string
	for _, h := range out {
		if !strings.HasPrefix(h.Key, "x-retry-") && !strings.HasPrefix(h.Key, "x-original-") {
			kept = append(kept, h.Key+"="+string(h.Value))
		}
	}
	want := []string{"x-tenant=acme", "traceparent=" + traceparent, "X-Retry-Attempt=not ours: header keys are case-sensitive", "x-tenant=second value kept too"}
	if diff := cmp.Diff(want, kept); diff != "" {
		t.Errorf("kept headers (-want +got):\n%s", diff)
	}
	if v, _ := retrymeta.Get(out, retrymeta.HeaderAttempt); v != "1" {
		t.Errorf("x-retry-attempt = %q, want 1 (the stale 7 replaced)", v)
	}
	if _, ok := retrymeta.Get(out, "x-retry-legacy-field"); ok {
		t.Error("an unknown header of an owned family survived the hop")
	}
}

func TestApplyDoesNotModifyOrAliasItsInput(t *testing.T) {
	in := userHeaders()
	in = append(in, kafka.Header{Key: retrymeta.HeaderAttempt, Value: []byte("1")})
	snapshot := make([]kafka.Header, len(in))
	for i, h := range in {
		snapshot[i] = kafka.Header{Key: h.Key, Value: bytes.Clone(h.Value)}
	}
	out := retrymeta.Apply(in, fullMeta())
	if diff := cmp.Diff(snapshot, in); diff != "" {
		t.Fatalf("Apply modified its input (-before +after):\n%s", diff)
	}
	out[0].Value[0] = 'X'
	if in[0].Value[0] == 'X' {
		t.Error("the result shares value bytes with the input")
	}
}

// TestEachHopReplacesTheHistoryInsteadOfAppending runs a record through
// many hops, each with a long error and stack, and checks that the header
// count and the total size stay the same from the first hop on.
func TestEachHopReplacesTheHistoryInsteadOfAppending(t *testing.T) {
	longMessage := strings.Repeat("upstream said: ", 500)
	longStack := strings.Repeat("reeferdlq/pkg/handoff.(*Router).Route\n\t/src/handoff.go:99\n", 500)
	h := userHeaders()
	var count, size int
	for hop := 1; hop <= 9; hop++ {
		m, err := retrymeta.Parse(h)
		if err != nil {
			t.Fatalf("hop %d: %v", hop, err)
		}
		m.Attempt = hop
		m.DueAt = t0.Add(time.Duration(hop) * time.Second)
		if m.FirstFailureAt.IsZero() {
			m.FirstFailureAt = t0
		}
		m.LastFailureAt = t0.Add(time.Duration(hop) * time.Millisecond)
		m.ErrorClass = failure.Transient
		m.ErrorMessage = longMessage + strings.Repeat("!", hop)
		m.ErrorStack = longStack
		m.OriginalTopic, m.OriginalPartition, m.OriginalOffset = "orders", 3, 1234
		m.DLQReason = retrymeta.MaxAttempts
		h = retrymeta.Apply(h, m)

		c, s := len(h), headerBytes(h)
		if hop == 1 {
			count, size = c, s
		} else if c != count || s != size {
			t.Errorf("hop %d: %d headers of %d bytes, want %d of %d as after the first hop", hop, c, s, count, size)
		}
		if got, _ := retrymeta.Get(h, retrymeta.HeaderTraceParent); got != traceparent {
			t.Errorf("hop %d: traceparent = %q, want %q", hop, got, traceparent)
		}
	}
	m, err := retrymeta.ParseRetry(h)
	if err != nil {
		t.Fatal(err)
	}
	if m.Attempt != 9 || !m.FirstFailureAt.Equal(t0) {
		t.Errorf("after 9 hops: attempt %d, first failure %v; want 9, %v", m.Attempt, m.FirstFailureAt, t0)
	}
	if size > len(traceparent)+200+retrymeta.MaxMessageBytes+retrymeta.MaxStackBytes+300 {
		t.Errorf("headers are %d bytes: the caps did not hold", size)
	}
}

func headerBytes(h []kafka.Header) int {
	n := 0
	for _, hd := range h {
		n += len(hd.Key) + len(hd.Value)
	}
	return n
}

func TestApplyCapsMessageAndStackOnACharacterBoundary(t *testing.T) {
	tests := []struct {
		name      string
		message   string
		wantExact string // "" means: check the cap and marker only
	}{
		{"short message untouched", "connection refused", "connection refused"},
		{"exactly at the cap untouched", strings.Repeat("a", retrymeta.MaxMessageBytes), strings.Repeat("a", retrymeta.MaxMessageBytes)},
		{"one byte over", strings.Repeat("a", retrymeta.MaxMessageBytes+1), ""},
		{"multi-byte characters across the cut", strings.Repeat("é€😀", 400), ""},
		{"invalid UTF-8 replaced", "bad \xff byte", "bad \uFFFD byte"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := retrymeta.Apply(nil, retrymeta.Meta{ErrorMessage: tt.message, ErrorStack: strings.Repeat(tt.message, 8)})
			msg, _ := retrymeta.Get(h, retrymeta.HeaderErrorMessage)
			stack, _ := retrymeta.Get(h, retrymeta.HeaderErrorStack)
			for _, c := range []struct {
				name, value, original string
				limit                 int
			}{{"message", msg, tt.message, retrymeta.MaxMessageBytes}, {"stack", stack, strings.Repeat(tt.message, 8), retrymeta.MaxStackBytes}} {
				if len(c.value) > c.limit || !utf8.ValidString(c.value) {
					t.Errorf("%s is %d bytes (cap %d), valid UTF-8: %v", c.name, len(c.value), c.limit, utf8.ValidString(c.value))
				}
				if len(strings.ToValidUTF8(c.original, "\uFFFD")) > c.limit {
					kept := strings.TrimSuffix(c.value, retrymeta.TruncatedMarker)
					if kept == c.value || !strings.HasPrefix(c.original, kept) {
						t.Errorf("%s was cut without the marker or not at a prefix: %q", c.name, c.value)
					}
					if c.limit-len(c.value) >= utf8.UTFMax {
						t.Errorf("%s wastes %d bytes of its cap", c.name, c.limit-len(c.value))
					}
				}
			}
			if tt.wantExact != "" && msg != tt.wantExact {
				t.Errorf("message = %q, want %q", msg, tt.wantExact)
			}
		})
	}
}

func TestTruncateWithATinyLimit(t *testing.T) {
	if got := retrymeta.Truncate("abcdef", 3); got != "" {
		t.Errorf("Truncate to less than the marker = %q, want empty", got)
	}
	if got := retrymeta.Truncate("abc", 3); got != "abc" {
		t.Errorf("Truncate(abc, 3) = %q", got)
	}
}

func TestParseRejectsGarbageNamingTheHeaderAndValue(t *testing.T) {
	tests := []struct {
		header, value string
	}{
		{retrymeta.HeaderAttempt, "three"},
		{retrymeta.HeaderAttempt, "-1"},
		{retrymeta.HeaderAttempt, "+2"},
		{retrymeta.HeaderAttempt, " 2"},
		{retrymeta.HeaderAttempt, ""},
		{retrymeta.HeaderAttempt, "99999999999"},
		{retrymeta.HeaderDueAt, "2025-03-04T05:06:07Z"},
		{retrymeta.HeaderDueAt, "1.5e12"},
		{retrymeta.HeaderDueAt, "99999999999999999999"},
		{retrymeta.HeaderFirstFailureAt, "yesterday"},
		{retrymeta.HeaderLastFailureAt, "-5"},
		{retrymeta.HeaderErrorClass, "TRANSIENT"},
		{retrymeta.HeaderErrorMessage, "bad \xff byte"},
		{retrymeta.HeaderOriginalTopic, "orders/../x"},
		{retrymeta.HeaderOriginalTopic, ""},
		{retrymeta.HeaderOriginalTopic, strings.Repeat("t", 250)},
		{retrymeta.HeaderOriginalPartition, "p0"},
		{retrymeta.HeaderOriginalOffset, "0x10"},
		{retrymeta.HeaderOriginalTimestamp, "now"},
		{retrymeta.HeaderErrorStack, "\xc3"},
		{retrymeta.HeaderDLQReason, "gave-up"},
		{retrymeta.HeaderDeadLetteredAt, "1e3"},
		{retrymeta.HeaderRedriveCount, "-1"},
		{retrymeta.HeaderEditedFrom, "\xfe"},
	}
	for _, tt := range tests {
		t.Run(tt.header+"="+tt.value, func(t *testing.T) {
			h := append(userHeaders(), kafka.Header{Key: tt.header, Value: []byte(tt.value)})
			m, err := retrymeta.Parse(h)
			if err == nil {
				t.Fatalf("Parse accepted %s=%q as %+v", tt.header, tt.value, m)
			}
			if !failure.IsPermanent(err) || failure.ReasonOf(err) != "poison-headers" {
				t.Errorf("error %v: class %q reason %q, want permanent poison-headers", err, failure.ClassOf(err), failure.ReasonOf(err))
			}
			he, ok := errors.AsType[*retrymeta.HeaderError](err)
			if !ok || he.Header != tt.header {
				t.Fatalf("error %v does not name header %s", err, tt.header)
			}
			if len(tt.value) <= 64 && he.Value != tt.value {
				t.Errorf("HeaderError.Value = %q, want %q", he.Value, tt.value)
			}
			if !strings.Contains(err.Error(), tt.header) {
				t.Errorf("message %q does not name the header", err)
			}
		})
	}
}

func TestParseReportsEveryBadHeaderAtOnce(t *testing.T) {
	h := []kafka.Header{
		{Key: retrymeta.HeaderAttempt, Value: []byte("x")},
		{Key: retrymeta.HeaderDueAt, Value: []byte("y")},
	}
	_, err := retrymeta.Parse(h)
	for _, name := range []string{retrymeta.HeaderAttempt, retrymeta.HeaderDueAt} {
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("error %v does not mention %s", err, name)
		}
	}
}

func TestParseIsLenientAboutAbsentHeadersAndTakesTheLastValue(t *testing.T) {
	m, err := retrymeta.Parse(userHeaders())
	if err != nil || m != (retrymeta.Meta{}) {
		t.Errorf("Parse(no retry headers) = %+v, %v; want zero Meta", m, err)
	}
	h := []kafka.Header{
		{Key: retrymeta.HeaderAttempt, Value: []byte("1")},
		{Key: retrymeta.HeaderAttempt, Value: []byte("2")},
	}
	if m, err := retrymeta.Parse(h); err != nil || m.Attempt != 2 {
		t.Errorf("Parse(attempt 1 then 2) = %d, %v; want 2 (last wins)", m.Attempt, err)
	}
}

func TestParseRetryRequiresWhatARetryRecordCarries(t *testing.T) {
	complete := retrymeta.Apply(nil, retrymeta.Meta{Attempt: 1, DueAt: t0, OriginalTopic: "orders"})
	if m, err := retrymeta.ParseRetry(complete); err != nil || m.OriginalPartition != 0 || m.OriginalOffset != 0 {
		t.Fatalf("ParseRetry(complete) = %+v, %v", m, err)
	}
	for _, missing := range []string{retrymeta.HeaderAttempt, retrymeta.HeaderDueAt, retrymeta.HeaderOriginalTopic,
		retrymeta.HeaderOriginalPartition, retrymeta.HeaderOriginalOffset} {
		t.Run(missing, func(t *testing.T) {
			var h []kafka.Header
			for _, hd := range complete {
				if hd.Key != missing {
					h = append(h, hd)
				}
			}
			_, err := retrymeta.ParseRetry(h)
			he, ok := errors.AsType[*retrymeta.HeaderError](err)
			if !ok || he.Header != missing || !he.Missing || !failure.IsPermanent(err) {
				t.Errorf("ParseRetry without %s = %v, want a permanent missing-header error naming it", missing, err)
			}
		})
	}
	garbage := append(complete, kafka.Header{Key: retrymeta.HeaderDueAt, Value: []byte("soon")})
	if _, err := retrymeta.ParseRetry(garbage); err == nil || !strings.Contains(err.Error(), `"soon"`) {
		t.Errorf("ParseRetry(due-at soon) = %v, want an error quoting the value", err)
	}
}

func TestApplyWritesAttemptZeroOnlyForARetryRecord(t *testing.T) {
	if _, ok := retrymeta.Get(retrymeta.Apply(nil, retrymeta.Meta{ErrorClass: failure.Permanent}), retrymeta.HeaderAttempt); ok {
		t.Error("attempt written for a record that was never retried")
	}
	if v, _ := retrymeta.Get(retrymeta.Apply(nil, retrymeta.Meta{DueAt: t0}), retrymeta.HeaderAttempt); v != "0" {
		t.Errorf("attempt = %q for a scheduled record, want 0", v)
	}
}

func TestGetReturnsTheLastValue(t *testing.T) {
	h := []kafka.Header{{Key: "k", Value: []byte("1")}, {Key: "other", Value: []byte("x")}, {Key: "k", Value: []byte("2")}}
	if v, ok := retrymeta.Get(h, "k"); !ok || v != "2" {
		t.Errorf("Get(k) = %q, %v; want 2, true", v, ok)
	}
	if v, ok := retrymeta.Get(h, "K"); ok {
		t.Errorf("Get(K) = %q, true; header keys are case-sensitive", v)
	}
}

func BenchmarkApply(b *testing.B) {
	h := retrymeta.Apply(userHeaders(), fullMeta())
	m := fullMeta()
	for b.Loop() {
		h = retrymeta.Apply(h, m)
	}
}

func TestFailedCountsAttemptsAndKeepsTheFirstFailureTime(t *testing.T) {
	var m retrymeta.Meta
	m.OriginalTopic = "orders"
	m = m.Failed(failure.NewTransient("http-503", errors.New("busy")), t0)
	m = m.Failed(errors.New("still busy"), t0.Add(time.Second))
	m = m.Failed(failure.NewPermanent("http-422", errors.New("bad order")), t0.Add(2*time.Second))
	want := retrymeta.Meta{
		Attempt:        3,
		FirstFailureAt: t0,
		LastFailureAt:  t0.Add(2 * time.Second),
		ErrorClass:     failure.Permanent,
		ErrorMessage:   "http-422: bad order",
		OriginalTopic:  "orders",
	}
	if diff := cmp.Diff(want, m); diff != "" {
		t.Errorf("after three failures (-want +got):\n%s", diff)
	}
}

func TestDeadLetteredSetsReasonTimeAndStackAndClearsTheDueTime(t *testing.T) {
	err := failure.NewPermanent("decode", errors.New("not JSON"))
	m := retrymeta.Meta{Attempt: 1, DueAt: t0}.DeadLettered(retrymeta.PermanentError, err, t0)
	if m.DLQReason != retrymeta.PermanentError || !m.DeadLetteredAt.Equal(t0) || !m.DueAt.IsZero() {
		t.Errorf("DeadLettered() = %+v", m)
	}
	if m.ErrorStack != err.Stack() || !strings.Contains(m.ErrorStack, "TestDeadLetteredSetsReasonTimeAndStack") {
		t.Errorf("ErrorStack = %q, want the stack captured by the error", m.ErrorStack)
	}
}
