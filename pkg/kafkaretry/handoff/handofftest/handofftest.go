// Package handofftest is a fake broker for the tests of code that writes
// through a handoff.Writer: it keeps every WriteMessages call, or fails
// them all with the error it is given.
package handofftest

import (
	"context"
	"sync"
	"testing"

	"github.com/segmentio/kafka-go"
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
