package consumer_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/consumer"
)

// gatedHandler starts every record, reports it on started, and finishes it
// when its gate (by offset) is opened.
type gatedHandler struct {
	started chan int64
	gates   map[int64]chan struct{} // written before Run starts, read only after
}

func newGatedHandler(n int) *gatedHandler {
	h := &gatedHandler{started: make(chan int64, n), gates: make(map[int64]chan struct{})}
	for i := range n {
		h.gates[int64(i)] = make(chan struct{})
	}
	return h
}

func (h *gatedHandler) handle(ctx context.Context, msg kafka.Message) error {
	h.started <- msg.Offset
	select {
	case <-h.gates[msg.Offset]:
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}

func (h *gatedHandler) open(offset int64) { close(h.gates[offset]) }

// expectStarts waits for n records to start and returns their offsets.
func (h *gatedHandler) expectStarts(t *testing.T, n int) map[int64]bool {
	t.Helper()
	got := map[int64]bool{}
	for range n {
		select {
		case o := <-h.started:
			got[o] = true
		case <-time.After(10 * time.Second):
			t.Fatalf("started %v, want %d records to start", got, n)
		}
	}
	return got
}

// expectNoStart checks that no record starts for a while. A negative
// check needs a wait: 300 ms is ample for a record that is free to start
// (it starts within microseconds), and a loaded machine can only make a
// wrongly started record show up later, never make the test fail wrongly.
func (h *gatedHandler) expectNoStart(t *testing.T) {
	t.Helper()
	select {
	case o := <-h.started:
		t.Fatalf("record %d started while the byte budget was full", o)
	case <-time.After(300 * time.Millisecond):
	}
}

// startBudgeted runs msgs through handler with a byte budget and enough
// lanes that the count bounds never interfere.
func startBudgeted(t *testing.T, msgs []kafka.Message, handler consumer.Handler, budget int64) (*running, *commitLog) {
	t.Helper()
	commits := newCommitLog()
	run := start(t, consumer.Config{
		Reader: &fakeReader{msgs: msgs}, Handler: handler,
		MaxInFlight: 16, MaxPendingBytes: budget,
		CommitInterval: time.Millisecond, OnCommitted: commits.hook,
	})
	return run, commits
}

// sized returns a record of exactly size bytes by consumer.RecordSize.
func sized(t *testing.T, offset int64, size int64) kafka.Message {
	t.Helper()
	msg := kafka.Message{Topic: "orders", Offset: offset, Key: fmt.Appendf(nil, "k%03d", offset)}
	pad := size - consumer.RecordSize(msg)
	if pad < 0 {
		t.Fatalf("record %d cannot be as small as %d bytes", offset, size)
	}
	msg.Value = make([]byte, pad)
	if got := consumer.RecordSize(msg); got != size {
		t.Fatalf("record size %d, want %d", got, size)
	}
	return msg
}

// TestRunBoundsHeldRecordsInBytes: records whose sizes sum to the budget
// are all held at once; one byte more and the fetch loop waits for a
// record to finish (back-pressure), and nothing is lost.
func TestRunBoundsHeldRecordsInBytes(t *testing.T) {
	const budget = 8 << 10
	sizes := []int64{2 << 10, 2 << 10, 2 << 10, 2 << 10} // sum: exactly the budget
	tests := []struct {
		name      string
		lastExtra int64 // added to the last record's size
		waits     bool
	}{
		{"sizes sum to the budget: all held at once", 0, false},
		{"one byte too big: the last one waits", 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msgs := make([]kafka.Message, len(sizes))
			for i, s := range sizes {
				if i == len(sizes)-1 {
					s += tt.lastExtra
				}
				msgs[i] = sized(t, int64(i), s)
			}
			h := newGatedHandler(len(msgs))
			run, commits := startBudgeted(t, msgs, h.handle, budget)

			first := len(msgs)
			if tt.waits {
				first--
			}
			h.expectStarts(t, first)
			if tt.waits {
				h.expectNoStart(t)
				h.open(0) // one record finishes: the waiting one fits now
				if got := h.expectStarts(t, 1); !got[int64(len(msgs)-1)] {
					t.Fatalf("started %v after a record finished, want the waiting record %d", got, len(msgs)-1)
				}
			}
			for i := range msgs {
				if !tt.waits || i != 0 {
					h.open(int64(i))
				}
			}
			commits.waitFor(t, int64(len(msgs)))
			if err := run.stop(t); err != nil {
				t.Fatalf("Run: %v", err)
			}
		})
	}
}

// TestRunTakesARecordLargerThanTheBudgetAlone: a record larger than the
// whole budget does not deadlock the fetch loop; it runs once nothing else
// is held, and the records after it wait for it.
func TestRunTakesARecordLargerThanTheBudgetAlone(t *testing.T) {
	const budget = 4 << 10
	msgs := []kafka.Message{
		sized(t, 0, 1<<10),
		sized(t, 1, 3*budget), // larger than the whole budget
		sized(t, 2, 1<<10),
	}
	h := newGatedHandler(len(msgs))
	run, commits := startBudgeted(t, msgs, h.handle, budget)
	h.expectStarts(t, 1)
	h.expectNoStart(t) // the big one waits until nothing is held
	h.open(0)
	if got := h.expectStarts(t, 1); !got[1] {
		t.Fatalf("started %v, want the large record 1 alone", got)
	}
	h.expectNoStart(t) // the next waits for the big one
	h.open(1)
	if got := h.expectStarts(t, 1); !got[2] {
		t.Fatalf("started %v, want record 2", got)
	}
	h.open(2)
	commits.waitFor(t, int64(len(msgs)))
	if err := run.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
}

// TestRunBoundsTheTrackerWindowInBytes: records that finished behind an
// unfinished one stay in the offset tracker's window until it finishes;
// their entries count against the budget, so a record stuck for good
// cannot let the window grow without bound.
func TestRunBoundsTheTrackerWindowInBytes(t *testing.T) {
	const n = 200
	msgs := make([]kafka.Message, n)
	for i := range msgs {
		msgs[i] = kafka.Message{Topic: "orders", Offset: int64(i), Key: fmt.Appendf(nil, "k%03d", i)}
	}
	// Record 0 hangs; every other record finishes at once but stays in
	// the window behind it. The budget holds record 0 and about 40
	// window entries (32 bytes each, see consumer.RecordOverhead).
	budget := consumer.RecordSize(msgs[0]) + 40*32
	var mu sync.Mutex
	handled := 0
	hang := make(chan struct{})
	handler := func(ctx context.Context, msg kafka.Message) error {
		if msg.Offset == 0 {
			select {
			case <-hang:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		mu.Lock()
		handled++
		mu.Unlock()
		return nil
	}
	run, commits := startBudgeted(t, msgs, handler, budget)
	// Give the fetch loop time to run into the bound (see expectNoStart
	// for why a wait is sound here).
	time.Sleep(300 * time.Millisecond)
	mu.Lock()
	got := handled
	mu.Unlock()
	if got == 0 || got > 45 {
		t.Fatalf("%d records finished behind the hanging one, want some but at most about 40 (the window's share of the budget)", got)
	}
	close(hang)
	commits.waitFor(t, n)
	if err := run.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
}
