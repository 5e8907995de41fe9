// Package handofftest is a fake broker for the tests of code that writes
// through a handoff.Writer: it keeps every WriteMessages call, or fails
// them all with the error it is given.
package handofftest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/backoff"
	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/handoff"
)

// Writer records WriteMessages calls. The zero value is ready; it is safe
// for concurrent use.
type Writer struct {
	mu    sync.Mutex
	calls [][]kafka.Message
	err   error
}

// Failing returns a Writer whose every call fails with err.
func Failing(err error) *Writer { return &Writer{err: err} }

// WriteMessages records msgs as one call, or returns the Writer's error.
func (w *Writer) WriteMessages(_ context.Context, msgs ...kafka.Message) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return w.err
	}
	w.calls = append(w.calls, msgs)
	return nil
}

// SetErr makes every later call fail with err (nil: succeed again).
func (w *Writer) SetErr(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.err = err
}

// Calls returns the recorded calls, oldest first.
func (w *Writer) Calls() [][]kafka.Message {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([][]kafka.Message(nil), w.calls...)
}

// Only returns the messages of the single call the test expects, and
// fails the test when there were more or none.
func (w *Writer) Only(t testing.TB) []kafka.Message {
	t.Helper()
	calls := w.Calls()
	if len(calls) != 1 {
		t.Fatalf("WriteMessages called %d times, want 1", len(calls))
	}
	return calls[0]
}

// Now is the fixed clock of NewRouter; it has milliseconds, like the
// headers.
var Now = time.Date(2026, 3, 1, 12, 0, 0, 123_000_000, time.UTC)

// NewRouter returns a Router over w to the topics order-retries and
// order-dead-letter, with the clock Now, 5 attempts, and a jitter source
// that makes the proportional strategy return the exponential delay
// (1s, 2s, 4s... up to a minute) exactly.
func NewRouter(w handoff.Writer) *handoff.Router {
	return &handoff.Router{
		Writer: w,
		Topics: handoff.Topics{Retry: "order-retries", DeadLetter: "order-dead-letter"},
		Policy: backoff.Policy{
			Base: time.Second, Max: time.Minute, Jitter: backoff.Proportional, Fraction: 0.1,
			Rand: func() float64 { return 0.5 },
		},
		MaxAttempts: 5,
		Now:         func() time.Time { return Now },
	}
}
