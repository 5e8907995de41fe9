package scheduler

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jonboulle/clockwork"
	"github.com/segmentio/kafka-go"

	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/consumer"
	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/offsets"
)

var t0 = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// record returns a message whose "due-in" header says when, after t0, it is
// due, the way the retry service's x-retry-due-at header does in epoch ms.
func record(offset int64, dueIn time.Duration) kafka.Message {
	return kafka.Message{
		Topic:     "order-retries",
		Offset:    offset,
		Key:       []byte("order-" + strconv.FormatInt(offset, 10)),
		Headers:   []kafka.Header{{Key: "due-in", Value: []byte(dueIn.String())}},
		Partition: 0,
	}
}

func dueAt(msg kafka.Message) time.Time {
	for _, h := range msg.Headers {
		if h.Key == "due-in" {
			d, err := time.ParseDuration(string(h.Value))
			if err != nil {
				return time.Time{}
			}
			return t0.Add(d)
		}
	}
	return time.Time{}
}

// start is what the fixture's Run reports for every record it starts.
type start struct {
	offset   int64
	at       time.Time // fake-clock time when the work started
	lateness time.Duration
}

// fixture is a running Scheduler on a fake clock whose work reports each
// start on started and then, if hold is set, waits for release.
type fixture struct {
	s       *Scheduler
	clock   *clockwork.FakeClock
	started chan start
	hold    bool
	release chan struct{}
	runErr  chan error
	cancel  context.CancelFunc

	mu       sync.Mutex
	lateness map[int64]time.Duration
}

func newFixture(t *testing.T, cfg Config, hold bool) *fixture {
	t.Helper()
	f := &fixture{
		clock:    clockwork.NewFakeClockAt(t0),
		started:  make(chan start, 1000),
		hold:     hold,
		release:  make(chan struct{}),
		runErr:   make(chan error, 1),
		lateness: map[int64]time.Duration{},
	}
	cfg.Clock = f.clock
	cfg.DueAt = dueAt
	if cfg.Run == nil {
		cfg.Run = f.run
	}
	cfg.OnStart = func(msg kafka.Message, late time.Duration) {
		f.mu.Lock()
		f.lateness[msg.Offset] = late
		f.mu.Unlock()
	}
	f.s = New(cfg)
	ctx, cancel := context.WithCancel(t.Context())
	f.cancel = cancel
	go func() { f.runErr <- f.s.Run(ctx) }()
	t.Cleanup(func() {
		f.s.Close()
		cancel()
		close(f.release)
		<-f.runErr
	})
	return f
}

func (f *fixture) run(ctx context.Context, msg kafka.Message) {
	f.mu.Lock()
	late := f.lateness[msg.Offset]
	f.mu.Unlock()
	f.started <- start{offset: msg.Offset, at: f.clock.Now(), lateness: late}
	if f.hold {
		select {
		case <-f.release:
		case <-ctx.Done():
		}
	}
}

func (f *fixture) add(t *testing.T, msgs ...kafka.Message) {
	t.Helper()
	for _, m := range msgs {
		if err := f.s.Add(t.Context(), m); err != nil {
			t.Fatalf("Add(offset %d): %v", m.Offset, err)
		}
	}
}

// advance moves the fake clock once the timer loop is waiting on a timer.
func (f *fixture) advance(t *testing.T, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := f.clock.BlockUntilContext(ctx, 1); err != nil {
		t.Fatalf("timer loop never armed a timer: %v", err)
	}
	f.clock.Advance(d)
}

// waitStarts returns the next n starts, failing the test if they do not come.
func (f *fixture) waitStarts(t *testing.T, n int) []start {
	t.Helper()
	var got []start
	timeout := time.After(30 * time.Second) // generous: a loaded -race run
	for len(got) < n {
		select {
		case s := <-f.started:
			got = append(got, s)
		case <-timeout:
			t.Fatalf("got %d starts %v, want %d", len(got), got, n)
		}
	}
	return got
}

func offsetsOf(starts []start) []int64 {
	out := make([]int64, len(starts))
	for i, s := range starts {
		out[i] = s.offset
	}
	return out
}

// eventually polls cond (for counters that change right after a start).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	// A poll for something that must happen: the bound only matters when it
	// never does, so it is far above what a loaded -race run needs.
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestSchedulerRunsRecordsInDueOrder(t *testing.T) {
	tests := []struct {
		name  string
		dueIn []time.Duration // by offset
		want  []int64         // start order
	}{
		{
			name:  "earliest due first, whatever the offset order",
			dueIn: []time.Duration{30 * time.Second, 10 * time.Second, 20 * time.Second, 50 * time.Second},
			want:  []int64{1, 2, 0, 3},
		},
		{
			name:  "equal due times keep fetch order",
			dueIn: []time.Duration{5 * time.Second, time.Second, 5 * time.Second, time.Second, 5 * time.Second},
			want:  []int64{1, 3, 0, 2, 4},
		},
		{
			name:  "already due records run at once, before any later one",
			dueIn: []time.Duration{40 * time.Second, -time.Second, 20 * time.Second},
			want:  []int64{1, 2, 0},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// One worker, so that start order is exactly hand-out order.
			f := newFixture(t, Config{Workers: 1}, false)
			for i, d := range tt.dueIn {
				f.add(t, record(int64(i), d))
			}
			f.advance(t, time.Minute)
			got := offsetsOf(f.waitStarts(t, len(tt.want)))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("start order mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestSchedulerNeverStartsARecordBeforeItsDueTime schedules records at random
// due times, moves the clock in random steps, and checks at every step that
// exactly the records due by then have started, none of them early.
func TestSchedulerNeverStartsARecordBeforeItsDueTime(t *testing.T) {
	for seed := range uint64(5) {
		rng := rand.New(rand.NewPCG(seed, 1))
		f := newFixture(t, Config{Workers: 4}, false)

		due := map[int64]time.Duration{}
		for i := range int64(100) {
			d := time.Duration(rng.IntN(10_000)) * time.Millisecond
			due[i] = d
			f.add(t, record(i, d))
		}
		now, startedCount := time.Duration(0), 0
		for startedCount < len(due) {
			step := time.Duration(1+rng.IntN(700)) * time.Millisecond
			f.advance(t, step)
			now += step
			dueByNow := 0
			for _, d := range due {
				if d <= now {
					dueByNow++
				}
			}
			for _, s := range f.waitStarts(t, dueByNow-startedCount) {
				if s.at.Before(t0.Add(due[s.offset])) {
					t.Fatalf("seed %d: offset %d started at %v, before its due time %v", seed, s.offset, s.at.Sub(t0), due[s.offset])
				}
				if s.lateness < 0 {
					t.Fatalf("seed %d: offset %d: negative lateness %v", seed, s.offset, s.lateness)
				}
			}
			startedCount = dueByNow
			if got, want := f.s.Pending(), len(due)-dueByNow; got != want {
				// Pending drops only when a worker takes the record.
				eventually(t, "pending matches the records not yet due", func() bool { return f.s.Pending() == want })
			}
		}
	}
}

func TestSchedulerDoesNotHoldASoonerRecordBehindALaterOne(t *testing.T) {
	f := newFixture(t, Config{}, false)
	f.add(t, record(0, 60*time.Second), record(1, time.Second))

	f.advance(t, time.Second)
	got := f.waitStarts(t, 1)
	if diff := cmp.Diff([]start{{offset: 1, at: t0.Add(time.Second)}}, got, cmp.AllowUnexported(start{})); diff != "" {
		t.Fatalf("first start mismatch (-want +got):\n%s", diff)
	}
	if n := f.s.Pending(); n != 1 {
		t.Fatalf("Pending() = %d while offset 0 waits, want 1", n)
	}

	f.advance(t, 59*time.Second)
	got = f.waitStarts(t, 1)
	if diff := cmp.Diff([]start{{offset: 0, at: t0.Add(60 * time.Second)}}, got, cmp.AllowUnexported(start{})); diff != "" {
		t.Fatalf("second start mismatch (-want +got):\n%s", diff)
	}
}

func TestSchedulerBlocksAtMaxPendingAndResumesWhenWorkFinishes(t *testing.T) {
	f := newFixture(t, Config{MaxPending: 2, Workers: 2}, true)
	f.add(t, record(0, 0))           // runs at once and holds its slot until released
	f.add(t, record(1, time.Minute)) // waits
	f.waitStarts(t, 1)

	short, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if err := f.s.Add(short, record(2, 0)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Add with 2 records held and MaxPending 2: err = %v, want it to block until the deadline", err)
	}

	added := make(chan error, 1)
	go func() { added <- f.s.Add(t.Context(), record(2, 0)) }()
	f.release <- struct{}{} // offset 0 finishes: one slot frees up
	select {
	case err := <-added:
		if err != nil {
			t.Fatalf("Add after a record finished: %v", err)
		}
	case <-time.After(30 * time.Second): // generous: a loaded -race run
		t.Fatal("Add still blocked after a record finished")
	}
	if got := offsetsOf(f.waitStarts(t, 1)); !slices.Equal(got, []int64{2}) {
		t.Fatalf("started %v after the slot freed, want [2]", got)
	}
}

// TestSchedulerCommitsNeverPassAnUnfinishedOffset wires the scheduler to an
// offsets.Tracker the way consumer.Run does: records finish in due order, and
// the committable offset waits for the earliest offset.
func TestSchedulerCommitsNeverPassAnUnfinishedOffset(t *testing.T) {
	tr := offsets.NewTracker()
	finished := make(chan int64, 10)
	f := newFixture(t, Config{Run: func(_ context.Context, msg kafka.Message) {
		tr.Done(msg.Partition, msg.Offset)
		finished <- msg.Offset
	}}, false)

	for i, d := range []time.Duration{60 * time.Second, time.Second, 2 * time.Second, 3 * time.Second, 4 * time.Second} {
		m := record(int64(i), d)
		tr.Begin(m.Partition, m.Offset)
		f.add(t, m)
	}
	f.advance(t, 5*time.Second)
	for range 4 {
		<-finished
	}
	if got := tr.Committable(); got != nil {
		t.Fatalf("Committable() = %v while offset 0 waits, want nothing", got)
	}

	f.advance(t, 55*time.Second)
	<-finished
	if diff := cmp.Diff(map[int]int64{0: 4}, tr.Committable()); diff != "" {
		t.Fatalf("Committable() after offset 0 finished (-want +got):\n%s", diff)
	}
}

func TestSchedulerCloseDropsWaitingRecordsAndWaitsForRunningOnes(t *testing.T) {
	f := newFixture(t, Config{}, true)
	f.add(t, record(0, 0), record(1, time.Minute))
	f.waitStarts(t, 1)

	f.s.Close()
	if err := f.s.Add(t.Context(), record(2, 0)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Add after Close: err = %v, want ErrClosed", err)
	}
	select {
	case err := <-f.runErr:
		t.Fatalf("Run returned (%v) while offset 0 was still running", err)
	case <-time.After(50 * time.Millisecond):
	}

	f.release <- struct{}{}
	select {
	case err := <-f.runErr:
		f.runErr <- err // for the cleanup
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(30 * time.Second): // generous: a loaded -race run
		t.Fatal("Run did not return after the running record finished")
	}
	f.clock.Advance(2 * time.Minute)
	select {
	case s := <-f.started:
		t.Fatalf("offset %d started after Close", s.offset)
	default:
	}
	if n := f.s.Pending(); n != 0 {
		t.Fatalf("Pending() = %d after Run returned, want 0 (waiting records are dropped)", n)
	}
}

func TestSchedulerCancelledContextStopsRunAndRunningWork(t *testing.T) {
	f := newFixture(t, Config{}, true)
	f.add(t, record(0, 0))
	f.waitStarts(t, 1)

	f.cancel() // the work's ctx ends, so the held record returns
	select {
	case err := <-f.runErr:
		f.runErr <- err
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(30 * time.Second): // generous: a loaded -race run
		t.Fatal("Run did not return after its context was cancelled")
	}
	if err := f.s.Add(t.Context(), record(1, 0)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Add after Run ended: err = %v, want ErrClosed", err)
	}
}

func TestSchedulerConfigErrors(t *testing.T) {
	noDueAt := New(Config{Run: func(context.Context, kafka.Message) {}})
	if err := noDueAt.Run(t.Context()); err == nil {
		t.Error("Run without DueAt: want an error")
	}
	if err := noDueAt.Add(t.Context(), record(0, 0)); err == nil {
		t.Error("Add without DueAt: want an error")
	}
	noRun := New(Config{DueAt: dueAt})
	if err := noRun.Add(t.Context(), record(0, 0)); err == nil {
		t.Error("Add without Run: want an error")
	}
}

var _ consumer.Dispatcher = (*Scheduler)(nil)
