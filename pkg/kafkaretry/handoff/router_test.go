package handoff_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/segmentio/kafka-go"

	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/backoff"
	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/failure"
	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/handoff"
	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/handoff/handofftest"
	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/retrymeta"
)

// now is the fixed clock of every test.
var now = handofftest.Now

// newRouter returns a Router with a fixed clock and a jitter source that
// makes the proportional strategy return the exponential delay exactly.
func newRouter(w handoff.Writer) *handoff.Router { return handofftest.NewRouter(w) }

const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

// orderRecord is an order record as a consumer reads it; the router
// forwards its key and value untouched, whatever they hold.
func orderRecord(t *testing.T, orderID string, headers ...kafka.Header) kafka.Message {
	t.Helper()
	value := []byte(`{"specversion":"1.0","type":"OrderCreated","subject":"` + orderID +
		`","data":{"orderID":"` + orderID + `","productID":"P-1","quantity":10}}`)
	return kafka.Message{
		Topic: "orders", Partition: 3, Offset: 42,
		Key: []byte(orderID), Value: value, Headers: headers,
		Time: now.Add(-time.Minute),
	}
}

func header(key, value string) kafka.Header { return kafka.Header{Key: key, Value: []byte(value)} }

func TestFailRoutesByClassAndAttempt(t *testing.T) {
	transient := failure.NewTransient("http-503", errors.New("inventory answered 503"))
	permanent := failure.NewPermanent("http-422", errors.New("inventory answered 422"))
	withRetryAfter := func(d time.Duration) error {
		e := failure.NewTransient("http-429", errors.New("inventory answered 429"))
		e.RetryAfter = d
		return e
	}
	first := now.Add(-time.Hour)
	// laterHop is the metadata a record carries after failed attempts.
	laterHop := func(attempt int) retrymeta.Meta {
		return retrymeta.Meta{
			Attempt: attempt, DueAt: now.Add(-time.Second), FirstFailureAt: first, LastFailureAt: now.Add(-2 * time.Second),
			ErrorClass: failure.Transient, ErrorMessage: "earlier failure",
			OriginalTopic: "orders", OriginalPartition: 1, OriginalOffset: 7, OriginalTimestamp: first.Add(-time.Minute),
		}
	}
	firstHop := retrymeta.Meta{
		OriginalTopic: "orders", OriginalPartition: 3, OriginalOffset: 42, OriginalTimestamp: now.Add(-time.Minute),
		FirstFailureAt: now,
	}

	tests := []struct {
		name        string
		prev        retrymeta.Meta
		maxAttempts int
		err         error
		wantTopic   string
		wantRoute   handoff.Route
		wantReason  retrymeta.Reason
		wantAttempt int
		wantDelay   time.Duration
		wantOrigin  retrymeta.Meta // original coordinates and first failure
	}{
		{"first transient failure goes to retry as attempt 1", retrymeta.Meta{}, 5, transient,
			"order-retries", handoff.RouteRetry, "", 1, time.Second, firstHop},
		{"later transient failure backs off exponentially", laterHop(3), 5, transient,
			"order-retries", handoff.RouteRetry, "", 4, 8 * time.Second, laterHop(3)},
		{"Retry-After longer than the backoff wins", retrymeta.Meta{}, 5, withRetryAfter(30 * time.Second),
			"order-retries", handoff.RouteRetry, "", 1, 30 * time.Second, firstHop},
		{"Retry-After is capped at the policy's max", retrymeta.Meta{}, 5, withRetryAfter(time.Hour),
			"order-retries", handoff.RouteRetry, "", 1, time.Minute, firstHop},
		{"transient failure reaching max attempts is dead-lettered", laterHop(4), 5, transient,
			"order-dead-letter", handoff.RouteDeadLetter, retrymeta.MaxAttempts, 5, 0, laterHop(4)},
		{"max attempts 1 dead-letters the first failure", retrymeta.Meta{}, 1, transient,
			"order-dead-letter", handoff.RouteDeadLetter, retrymeta.MaxAttempts, 1, 0, firstHop},
		{"permanent failure is dead-lettered at once", retrymeta.Meta{}, 5, permanent,
			"order-dead-letter", handoff.RouteDeadLetter, retrymeta.PermanentError, 1, 0, firstHop},
		{"permanent failure on a later hop keeps the first hop's data", laterHop(2), 5, permanent,
			"order-dead-letter", handoff.RouteDeadLetter, retrymeta.PermanentError, 3, 0, laterHop(2)},
		{"unclassified error counts as transient", retrymeta.Meta{}, 5, errors.New("connection reset"),
			"order-retries", handoff.RouteRetry, "", 1, time.Second, firstHop},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := &handofftest.Writer{}
			r := newRouter(w)
			r.MaxAttempts = tt.maxAttempts
			in := orderRecord(t, "O-1", header(retrymeta.HeaderTraceParent, traceparent), header("x-custom", "kept"))
			if tt.prev.Attempt > 0 {
				in.Headers = retrymeta.Apply(in.Headers, tt.prev)
			}

			d, err := r.Fail(context.Background(), in, tt.prev, tt.err)
			if err != nil {
				t.Fatal(err)
			}
			wantDecision := handoff.Decision{Route: tt.wantRoute, Reason: tt.wantReason, Attempt: tt.wantAttempt, Err: tt.err}
			if tt.wantRoute == handoff.RouteRetry {
				wantDecision.Delay, wantDecision.DueAt = tt.wantDelay, now.Add(tt.wantDelay)
			}
			if diff := cmp.Diff(wantDecision, d, cmpopts.EquateErrors()); diff != "" {
				t.Errorf("decision (-want +got):\n%s", diff)
			}

			msgs := w.Only(t)
			if len(msgs) != 1 {
				t.Fatalf("wrote %d records, want 1", len(msgs))
			}
			out := msgs[0]
			if out.Topic != tt.wantTopic || !bytes.Equal(out.Key, in.Key) || !bytes.Equal(out.Value, in.Value) {
				t.Errorf("wrote topic %q key %q; want topic %q with the input's key and value byte for byte", out.Topic, out.Key, tt.wantTopic)
			}
			for _, h := range []kafka.Header{header(retrymeta.HeaderTraceParent, traceparent), header("x-custom", "kept")} {
				if v, ok := retrymeta.Get(out.Headers, h.Key); !ok || v != string(h.Value) {
					t.Errorf("header %s = %q, %t; want %q carried along", h.Key, v, ok, h.Value)
				}
			}

			got, err := retrymeta.Parse(out.Headers)
			if err != nil {
				t.Fatalf("written headers do not parse: %v", err)
			}
			want := retrymeta.Meta{
				Attempt:           tt.wantAttempt,
				DueAt:             now.Add(tt.wantDelay),
				FirstFailureAt:    tt.wantOrigin.FirstFailureAt,
				LastFailureAt:     now,
				ErrorClass:        failure.ClassOf(tt.err),
				ErrorMessage:      tt.err.Error(),
				OriginalTopic:     tt.wantOrigin.OriginalTopic,
				OriginalPartition: tt.wantOrigin.OriginalPartition,
				OriginalOffset:    tt.wantOrigin.OriginalOffset,
				OriginalTimestamp: tt.wantOrigin.OriginalTimestamp,
			}
			if tt.wantRoute == handoff.RouteDeadLetter {
				want.DLQReason = tt.wantReason
				want.DeadLetteredAt = now
				if got.ErrorStack == "" {
					t.Error("dead letter has no x-error-stack")
				}
			} else if _, ok := retrymeta.Get(out.Headers, retrymeta.HeaderErrorStack); ok {
				t.Error("retry record carries x-error-stack; only dead letters should")
			}
			if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(retrymeta.Meta{}, "ErrorStack")); diff != "" {
				t.Errorf("headers (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPoisonDeadLettersWithReasonPoison(t *testing.T) {
	w := &handofftest.Writer{}
	in := kafka.Message{Topic: "orders", Partition: 0, Offset: 9, Key: []byte("k"), Value: []byte("{not json"), Time: now.Add(-time.Second)}
	decodeErr := errors.New("event: payload is not JSON") // deliberately unclassified
	d, err := newRouter(w).Poison(context.Background(), in, retrymeta.Meta{}, decodeErr)
	if err != nil {
		t.Fatal(err)
	}
	if d.Route != handoff.RouteDeadLetter || d.Reason != retrymeta.Poison || d.Attempt != 1 {
		t.Errorf("decision = %+v, want a poison dead letter at attempt 1", d)
	}
	out := w.Only(t)[0]
	meta, err := retrymeta.Parse(out.Headers)
	if err != nil {
		t.Fatal(err)
	}
	if out.Topic != "order-dead-letter" || !bytes.Equal(out.Value, in.Value) || !bytes.Equal(out.Key, in.Key) {
		t.Errorf("poison record went to %q with key %q value %q; want the dead-letter topic and the input bytes", out.Topic, out.Key, out.Value)
	}
	if meta.DLQReason != retrymeta.Poison || meta.ErrorClass != failure.Permanent || meta.ErrorMessage != decodeErr.Error() ||
		meta.OriginalOffset != 9 || meta.ErrorStack == "" || !meta.DeadLetteredAt.Equal(now) {
		t.Errorf("poison metadata = %+v", meta)
	}
}

func TestWriteFailureIsReturnedForEveryOutcome(t *testing.T) {
	brokerDown := errors.New("broker unreachable")
	r := newRouter(handofftest.Failing(brokerDown))
	in := orderRecord(t, "O-1")
	calls := map[string]func() error{
		"write": func() error {
			return r.Write(context.Background(), in)
		},
		"retry": func() error {
			_, err := r.Fail(context.Background(), in, retrymeta.Meta{}, failure.NewTransient("x", errors.New("x")))
			return err
		},
		"dead letter": func() error {
			_, err := r.Fail(context.Background(), in, retrymeta.Meta{}, failure.NewPermanent("x", errors.New("x")))
			return err
		},
		"poison": func() error {
			_, err := r.Poison(context.Background(), in, retrymeta.Meta{}, errors.New("bad"))
			return err
		},
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			if err := call(); !errors.Is(err, brokerDown) {
				t.Errorf("error = %v, want it to wrap the writer's error (the record must not be committed)", err)
			}
		})
	}
}

// TestHopsKeepHeaderCountConstant follows one record through three
// failed retries: every hop rewrites the same headers, so the record does
// not grow.
func TestHopsKeepHeaderCountConstant(t *testing.T) {
	w := &handofftest.Writer{}
	r := newRouter(w)
	rec := orderRecord(t, "O-1", header(retrymeta.HeaderTraceParent, traceparent))
	prev := retrymeta.Meta{}
	counts := []int{}
	for hop := 1; hop <= 3; hop++ {
		// A long message: the cap keeps the header size bounded too.
		err := failure.NewTransient("http-503", errors.New(strings.Repeat("inventory down ", 200)))
		if _, ferr := r.Fail(context.Background(), rec, prev, err); ferr != nil {
			t.Fatal(ferr)
		}
		out := w.Calls()[len(w.Calls())-1][0]
		// The next hop reads the record back from the retry topic.
		out.Partition, out.Offset = 5, int64(100+hop)
		meta, perr := retrymeta.ParseRetry(out.Headers)
		if perr != nil {
			t.Fatalf("hop %d: %v", hop, perr)
		}
		if meta.Attempt != hop || meta.OriginalTopic != "orders" || meta.OriginalOffset != 42 {
			t.Errorf("hop %d: attempt %d original %s@%d; want attempt %d and the first hop's coordinates",
				hop, meta.Attempt, meta.OriginalTopic, meta.OriginalOffset, hop)
		}
		if len(meta.ErrorMessage) > 1024 {
			t.Errorf("hop %d: error message is %d bytes, want at most 1 KiB", hop, len(meta.ErrorMessage))
		}
		counts = append(counts, len(out.Headers))
		rec, prev = out, meta
	}
	if counts[0] != counts[1] || counts[1] != counts[2] {
		t.Errorf("header counts per hop = %v, want constant", counts)
	}
}

// TestRedrivenRecordLosesItsOldDeadLetterHeaders: a record the dead-letter
// CLI sent back to the retry topic still carries x-dlq-reason; when it
// fails again transiently, its retry record must not look dead-lettered.
func TestRedrivenRecordLosesItsOldDeadLetterHeaders(t *testing.T) {
	w := &handofftest.Writer{}
	r := newRouter(w)
	in := orderRecord(t, "O-1")
	if _, err := r.Fail(context.Background(), in, retrymeta.Meta{}, failure.NewPermanent("http-422", errors.New("422"))); err != nil {
		t.Fatal(err)
	}
	dead := w.Calls()[0][0]
	prev, err := retrymeta.Parse(dead.Headers)
	if err != nil {
		t.Fatal(err)
	}
	// The redrive: attempts start over, the count of redrives goes up.
	prev.Attempt, prev.RedriveCount = 0, 1
	dead.Headers = retrymeta.Apply(dead.Headers, prev)

	if _, err := r.Fail(context.Background(), dead, prev, failure.NewTransient("http-503", errors.New("503"))); err != nil {
		t.Fatal(err)
	}
	out := w.Calls()[1][0]
	for _, key := range []string{retrymeta.HeaderDLQReason, retrymeta.HeaderDeadLetteredAt, retrymeta.HeaderErrorStack} {
		if v, ok := retrymeta.Get(out.Headers, key); ok {
			t.Errorf("retry record still carries %s=%q", key, v)
		}
	}
	meta, err := retrymeta.Parse(out.Headers)
	if err != nil {
		t.Fatal(err)
	}
	if meta.RedriveCount != 1 || meta.Attempt != 1 || out.Topic != "order-retries" {
		t.Errorf("redriven record: topic %s attempt %d redrive count %d; want order-retries, 1, 1", out.Topic, meta.Attempt, meta.RedriveCount)
	}
}

// TestDecorrelatedJitterGrowsFromThePreviousDelay: the previous delay is
// read back from the headers (due-at minus last failure).
func TestDecorrelatedJitterGrowsFromThePreviousDelay(t *testing.T) {
	w := &handofftest.Writer{}
	r := newRouter(w)
	r.Policy = backoff.Policy{Base: time.Second, Max: time.Minute, Jitter: backoff.Decorrelated, Rand: func() float64 { return 0.5 }}
	prev := retrymeta.Meta{Attempt: 2, LastFailureAt: now.Add(-10 * time.Second), DueAt: now.Add(-6 * time.Second)} // 4s
	d, err := r.Fail(context.Background(), orderRecord(t, "O-1"), prev, failure.NewTransient("x", errors.New("x")))
	if err != nil {
		t.Fatal(err)
	}
	// min(cap, base + (3*prev - base) * 0.5) = 1s + 11s*0.5
	if want := 6500 * time.Millisecond; d.Delay != want {
		t.Errorf("delay = %s, want %s", d.Delay, want)
	}
}

func TestValidateNamesEveryMissingField(t *testing.T) {
	err := (&handoff.Router{}).Validate()
	if err == nil {
		t.Fatal("Validate accepted an empty Router")
	}
	for _, want := range []string{"Writer", "Topics.Retry", "Topics.DeadLetter", "MaxAttempts", "Base"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
	if err := newRouter(&handofftest.Writer{}).Validate(); err != nil {
		t.Errorf("a complete Router: %v", err)
	}
}
