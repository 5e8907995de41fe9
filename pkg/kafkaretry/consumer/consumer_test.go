package consumer_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/segmentio/kafka-go"

	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/consumer"
	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/scheduler"
)

func TestRunKeepsPerKeyOrderWhileKeysRunConcurrently(t *testing.T) {
	addr := startBroker(t, 1)
	const lanes, perKey = 8, 25
	keys := []string{"order-a", "order-b", "order-c", "order-d"}
	probe := consumer.NewKeyLanes(lanes, 0)
	if probe.Lane([]byte(keys[0])) == probe.Lane([]byte(keys[1])) {
		t.Fatalf("precondition: %s and %s share a lane; pick other keys", keys[0], keys[1])
	}

	var msgs []kafka.Message
	for seq := range perKey {
		for _, k := range keys {
			msgs = append(msgs, kafka.Message{Key: []byte(k), Value: []byte(strconv.Itoa(seq))})
		}
	}
	produce(t, addr, msgs...)

	var (
		mu        sync.Mutex
		seen      = map[string][]int{}
		bStarted  = make(chan struct{})
		bOnce     sync.Once
		concurred atomic.Bool
	)
	handler := func(ctx context.Context, msg kafka.Message) error {
		seq, _ := strconv.Atoi(string(msg.Value))
		key := string(msg.Key)
		if key == keys[1] {
			bOnce.Do(func() { close(bStarted) })
		}
		// The first record of key a waits until a record of key b has
		// started: with one record at a time this would never happen.
		if key == keys[0] && seq == 0 {
			select {
			case <-bStarted:
				concurred.Store(true)
			case <-time.After(30 * time.Second): // generous: a loaded -race run
			}
		}
		mu.Lock()
		seen[key] = append(seen[key], seq)
		mu.Unlock()
		return nil
	}

	commits := newCommitLog()
	r := start(t, consumer.Config{
		Reader:         newReader(t, addr, groupName(t)),
		Handler:        handler,
		MaxInFlight:    lanes,
		CommitInterval: 10 * time.Millisecond,
		OnCommitted:    commits.hook,
	})
	commits.waitFor(t, int64(len(msgs)))
	if err := r.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}

	if !concurred.Load() {
		t.Error("records of different keys did not run concurrently")
	}
	want := make([]int, perKey)
	for i := range want {
		want[i] = i
	}
	for _, k := range keys {
		if diff := cmp.Diff(want, seen[k]); diff != "" {
			t.Errorf("key %s: processing order mismatch (-want +got):\n%s", k, diff)
		}
	}
	// 100 records at offsets 0..99: the group stores the next offset to read.
	if diff := cmp.Diff(map[int]int64{0: int64(len(msgs))}, committed(t, addr, groupName(t), 1)); diff != "" {
		t.Errorf("committed offsets (-want +got):\n%s", diff)
	}
}

func TestRunNeverCommitsPastAnUnfinishedOffset(t *testing.T) {
	addr := startBroker(t, 1)
	const n = 10
	produce(t, addr, values(n)...) // no keys: spread over the lanes

	release := make(chan struct{})
	fastDone := make(chan struct{})
	var fast atomic.Int32
	handler := func(ctx context.Context, msg kafka.Message) error {
		if msg.Offset == 0 {
			<-release // the slow record
			return nil
		}
		if fast.Add(1) == n-1 {
			close(fastDone)
		}
		return nil
	}
	commits := newCommitLog()
	group := groupName(t)
	r := start(t, consumer.Config{
		Reader:         newReader(t, addr, group),
		Handler:        handler,
		MaxInFlight:    16,
		CommitInterval: 5 * time.Millisecond,
		OnCommitted:    commits.hook,
	})

	waitClosed(t, fastDone, "offsets 1..9 to finish")
	time.Sleep(50 * time.Millisecond) // ten commit intervals with 1..9 finished
	if got := commits.all(); len(got) != 0 {
		t.Fatalf("committed %v while offset 0 was unfinished, want no commit", got)
	}
	if got := committed(t, addr, group, 1)[0]; got > 0 {
		t.Fatalf("group offset %d while offset 0 was unfinished, want none (-1) or 0", got)
	}

	close(release)
	commits.waitFor(t, n)
	if err := r.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if got := committed(t, addr, group, 1)[0]; got != n {
		t.Fatalf("group offset %d after every record finished, want %d", got, n)
	}
}

func TestRunRetriesAFailedHandOffAndDoesNotCommitPastIt(t *testing.T) {
	addr := startBroker(t, 1)
	const n = 5
	produce(t, addr, values(n)...)

	var (
		mu        sync.Mutex
		calls     = map[int64]int{}
		events    []string // commits and the success of offset 2, in order
		errOffset []int64
	)
	handler := func(ctx context.Context, msg kafka.Message) error {
		mu.Lock()
		defer mu.Unlock()
		calls[msg.Offset]++
		if msg.Offset == 2 {
			if calls[2] <= 3 {
				return errors.New("write to order-retries: broker unreachable")
			}
			events = append(events, "offset 2 handed off")
		}
		return nil
	}
	group := groupName(t)
	commits := newCommitLog()
	r := start(t, consumer.Config{
		Reader:         newReader(t, addr, group),
		Handler:        handler,
		CommitInterval: 5 * time.Millisecond,
		// Three failures span ~1.4 s of commit ticks: room for a commit of
		// offset 2 even when a loaded -race run makes a commit slow.
		RetryMinBackoff: 200 * time.Millisecond,
		OnCommitted: func(p int, off int64) {
			mu.Lock()
			events = append(events, fmt.Sprintf("commit %d", off))
			mu.Unlock()
			commits.hook(p, off)
		},
		OnHandlerError: func(msg kafka.Message, err error) {
			mu.Lock()
			errOffset = append(errOffset, msg.Offset)
			mu.Unlock()
		},
	})
	commits.waitFor(t, n)
	if err := r.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}

	mu.Lock()
	defer mu.Unlock()
	if diff := cmp.Diff(map[int64]int{0: 1, 1: 1, 2: 4, 3: 1, 4: 1}, calls); diff != "" {
		t.Errorf("handler calls per offset (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]int64{2, 2, 2}, errOffset); diff != "" {
		t.Errorf("OnHandlerError offsets (-want +got):\n%s", diff)
	}
	// Before offset 2 was handed off, no commit may pass it (commit 2 means
	// "continue at 2", which is fine; 3 or more would skip it).
	for _, e := range events {
		if e == "offset 2 handed off" {
			break
		}
		var off int64
		if _, err := fmt.Sscanf(e, "commit %d", &off); err == nil && off > 2 {
			t.Errorf("events %v: committed %d before offset 2 was handed off", events, off)
		}
	}
	if !slices.Contains(events, "commit 2") {
		t.Errorf("events %v: want the prefix before the failing record committed while it retried", events)
	}
}

func TestRunDrainsOnShutdownAndTheNextMemberResumesAfterTheLastFinishedRecord(t *testing.T) {
	addr := startBroker(t, 1)
	const n = 20
	produce(t, addr, values(n)...)
	group := groupName(t)

	// First member: offset 10 is in the middle of its hand-off when the
	// shutdown starts; it must be allowed to finish.
	var (
		mu           sync.Mutex
		finished     = map[int64]bool{}
		firstTenDone bool
		slowCtxErr   error
	)
	ctx10Started := make(chan struct{})
	firstTen := make(chan struct{})
	shutdown := make(chan struct{})
	handler1 := func(ctx context.Context, msg kafka.Message) error {
		if msg.Offset == 10 {
			close(ctx10Started)
			<-shutdown
			time.Sleep(30 * time.Millisecond) // still working after the signal
			mu.Lock()
			slowCtxErr = ctx.Err()
			mu.Unlock()
			if ctx.Err() != nil {
				return ctx.Err()
			}
		}
		mu.Lock()
		finished[msg.Offset] = true
		if !firstTenDone && !slices.ContainsFunc([]int64{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, func(o int64) bool { return !finished[o] }) {
			firstTenDone = true
			close(firstTen)
		}
		mu.Unlock()
		return nil
	}
	first := start(t, consumer.Config{
		Reader:         newReader(t, addr, group),
		Handler:        handler1,
		MaxInFlight:    4,
		CommitInterval: 5 * time.Millisecond,
	})
	waitClosed(t, ctx10Started, "offset 10 to start")
	waitClosed(t, firstTen, "offsets 0..9 to finish")
	first.cancel()
	close(shutdown)
	if err := first.stop(t); err != nil {
		t.Fatalf("first Run: %v", err)
	}

	mu.Lock()
	if slowCtxErr != nil {
		t.Errorf("the in-flight handler's context was cancelled by the shutdown signal: %v", slowCtxErr)
	}
	var resume int64 // first offset the first member did not finish
	for finished[resume] {
		resume++
	}
	mu.Unlock()
	if resume <= 10 {
		t.Fatalf("first member finished up to offset %d; the in-flight offset 10 should have finished during the drain", resume-1)
	}
	if got := committed(t, addr, group, 1)[0]; got != resume {
		t.Fatalf("group offset after shutdown = %d, want %d (the first unfinished record)", got, resume)
	}

	// Second member of the same group: it must start exactly at resume and
	// see every record from there, none skipped.
	var (
		mu2  sync.Mutex
		got2 []int64
	)
	all := make(chan struct{})
	handler2 := func(ctx context.Context, msg kafka.Message) error {
		mu2.Lock()
		defer mu2.Unlock()
		got2 = append(got2, msg.Offset)
		if msg.Offset == n-1 {
			close(all)
		}
		return nil
	}
	second := start(t, consumer.Config{
		Reader:     newReader(t, addr, group),
		Handler:    handler2,
		Dispatcher: consumer.NewKeyLanes(1, 0), // one lane: processing order = fetch order
	})
	waitClosed(t, all, "the second member to reach the last record")
	if err := second.stop(t); err != nil {
		t.Fatalf("second Run: %v", err)
	}
	var want []int64
	for o := resume; o < n; o++ {
		want = append(want, o)
	}
	mu2.Lock()
	defer mu2.Unlock()
	if diff := cmp.Diff(want, got2); diff != "" {
		t.Errorf("offsets processed by the second member (-want +got):\n%s", diff)
	}
	if got := committed(t, addr, group, 1)[0]; got != n {
		t.Errorf("group offset after the second member = %d, want %d", got, n)
	}
}

func TestRunDrainTimeoutCancelsHandlersAndLeavesTheirRecordsUncommitted(t *testing.T) {
	addr := startBroker(t, 1)
	produce(t, addr, values(6)...)
	group := groupName(t)

	stuck := make(chan struct{})
	handler := func(ctx context.Context, msg kafka.Message) error {
		if msg.Offset == 3 {
			close(stuck)
			<-ctx.Done() // a hand-off that cannot complete
			return fmt.Errorf("write to order-retries: %w", ctx.Err())
		}
		return nil
	}
	commits := newCommitLog()
	r := start(t, consumer.Config{
		Reader:         newReader(t, addr, group),
		Handler:        handler,
		CommitInterval: 5 * time.Millisecond,
		DrainTimeout:   50 * time.Millisecond,
		OnCommitted:    commits.hook,
	})
	waitClosed(t, stuck, "offset 3 to start")
	commits.waitFor(t, 3)
	if err := r.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if got := committed(t, addr, group, 1)[0]; got != 3 {
		t.Fatalf("group offset = %d, want 3: the cancelled record must stay uncommitted", got)
	}
}

// TestRunCommitModes shows the loss window of committing before processing:
// the process "dies" (its hand-off never completes) while handling offset 3,
// and after a restart a new member of the group takes over.
func TestRunCommitModes(t *testing.T) {
	tests := []struct {
		name                   string
		commitBeforeProcessing bool
		wantGroupOffset        int64   // after the crash
		wantSecond             []int64 // offsets the next member processes
	}{
		{
			name:            "after hand-off (default): the unfinished records are re-delivered",
			wantGroupOffset: 3,
			wantSecond:      []int64{3, 4, 5, 6},
		},
		{
			// Offsets 3, 4 and 5 were committed as they were fetched; 3 was
			// interrupted and 4, 5 never started: all three are lost.
			name:                   "before processing: the unfinished records are lost",
			commitBeforeProcessing: true,
			wantGroupOffset:        6,
			wantSecond:             []int64{6},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := startBroker(t, 1)
			// One key: the records run one after the other, so 4 and 5 wait
			// behind 3 and are never started by the first member.
			keyed := func(msgs []kafka.Message) []kafka.Message {
				for i := range msgs {
					msgs[i].Key = []byte("order-1")
				}
				return msgs
			}
			produce(t, addr, keyed(values(6))...)
			group := groupName(t)

			commits := newCommitLog()
			var committedFirst atomic.Bool // was each record committed before its handler ran?
			committedFirst.Store(true)
			crashing := make(chan struct{})
			handler1 := func(ctx context.Context, msg kafka.Message) error {
				if commits.last() < msg.Offset+1 {
					committedFirst.Store(false)
				}
				if msg.Offset == 3 {
					close(crashing)
					<-ctx.Done() // the process dies here: the hand-off never happens
					return ctx.Err()
				}
				return nil
			}
			first := start(t, consumer.Config{
				Reader:                 newReader(t, addr, group),
				Handler:                handler1,
				CommitInterval:         5 * time.Millisecond,
				DrainTimeout:           20 * time.Millisecond,
				CommitBeforeProcessing: tt.commitBeforeProcessing,
				OnCommitted:            commits.hook,
			})
			waitClosed(t, crashing, "offset 3 to start")
			commits.waitFor(t, tt.wantGroupOffset)
			if err := first.stop(t); err != nil {
				t.Fatalf("first Run: %v", err)
			}
			if got := committedFirst.Load(); got != tt.commitBeforeProcessing {
				t.Errorf("every record committed before its handler ran = %v, want %v", got, tt.commitBeforeProcessing)
			}
			if got := committed(t, addr, group, 1)[0]; got != tt.wantGroupOffset {
				t.Fatalf("group offset after the crash = %d, want %d", got, tt.wantGroupOffset)
			}

			// After the restart a new order arrives at offset 6.
			produce(t, addr, keyed(values(1))...)
			var (
				mu  sync.Mutex
				got []int64
			)
			last := make(chan struct{})
			second := start(t, consumer.Config{
				Reader: newReader(t, addr, group),
				Handler: func(ctx context.Context, msg kafka.Message) error {
					mu.Lock()
					defer mu.Unlock()
					got = append(got, msg.Offset)
					if msg.Offset == 6 {
						close(last)
					}
					return nil
				},
			})
			waitClosed(t, last, "the second member to reach offset 6")
			if err := second.stop(t); err != nil {
				t.Fatalf("second Run: %v", err)
			}
			mu.Lock()
			defer mu.Unlock()
			if diff := cmp.Diff(tt.wantSecond, got); diff != "" {
				t.Errorf("offsets processed after the restart (-want +got):\n%s", diff)
			}
		})
	}
}

// TestRunWithSchedulerRunsRecordsWhenDue uses the scheduler as the dispatcher:
// records run in due order, not offset order, and the commit still covers
// every record once all finished.
func TestRunWithSchedulerRunsRecordsWhenDue(t *testing.T) {
	addr := startBroker(t, 1)
	base := time.Now()
	// By offset. Offset 0 must still wait when the three are fetched (after
	// the produce and the group join): 4 s leaves room for a loaded -race
	// run; once fetched, due order alone decides.
	delays := []time.Duration{4 * time.Second, 0, 2 * time.Second}
	var msgs []kafka.Message
	for i, d := range delays {
		due := base.Add(d).UnixMilli()
		msgs = append(msgs, kafka.Message{
			Key:     []byte("order-" + strconv.Itoa(i)),
			Headers: []kafka.Header{{Key: "x-retry-due-at", Value: []byte(strconv.FormatInt(due, 10))}},
		})
	}
	produce(t, addr, msgs...)

	dueAt := func(msg kafka.Message) time.Time {
		for _, h := range msg.Headers {
			if h.Key == "x-retry-due-at" {
				ms, err := strconv.ParseInt(string(h.Value), 10, 64)
				if err == nil {
					return time.UnixMilli(ms)
				}
			}
		}
		return time.Time{}
	}
	var (
		mu    sync.Mutex
		order []int64
		early []int64
	)
	commits := newCommitLog()
	r := start(t, consumer.Config{
		Reader: newReader(t, addr, groupName(t)),
		Handler: func(ctx context.Context, msg kafka.Message) error {
			mu.Lock()
			defer mu.Unlock()
			order = append(order, msg.Offset)
			if time.Now().Before(dueAt(msg)) {
				early = append(early, msg.Offset)
			}
			return nil
		},
		Dispatcher:     scheduler.New(scheduler.Config{DueAt: dueAt}),
		CommitInterval: 5 * time.Millisecond,
		OnCommitted:    commits.hook,
	})
	commits.waitFor(t, 3)
	if err := r.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if diff := cmp.Diff([]int64{1, 2, 0}, order); diff != "" {
		t.Errorf("run order (-want +got):\n%s", diff)
	}
	if len(early) > 0 {
		t.Errorf("offsets %v ran before their due time", early)
	}
	// The earliest offset ran last, so nothing could be committed before it.
	if diff := cmp.Diff([]int64{3}, commits.all()); diff != "" {
		t.Errorf("commits (-want +got):\n%s", diff)
	}
}

func TestRunRejectsInvalidConfig(t *testing.T) {
	okHandler := func(context.Context, kafka.Message) error { return nil }
	reader := &kafka.Reader{}
	tests := []struct {
		name    string
		cfg     consumer.Config
		wantErr string
	}{
		{"no reader", consumer.Config{Handler: okHandler}, "consumer config: Reader is nil"},
		{"no handler", consumer.Config{Reader: reader}, "consumer config: Handler is nil"},
		{
			"negative commit interval",
			consumer.Config{Reader: reader, Handler: okHandler, CommitInterval: -time.Second},
			"consumer config: CommitInterval is -1s, want a positive duration (or 0 for the default 200ms)",
		},
		{
			"negative max in flight",
			consumer.Config{Reader: reader, Handler: okHandler, MaxInFlight: -1},
			"consumer config: MaxInFlight is -1, want a positive count (or 0 for the default 64)",
		},
		{
			"retry bounds reversed",
			consumer.Config{Reader: reader, Handler: okHandler, RetryMinBackoff: time.Second, RetryMaxBackoff: time.Millisecond},
			"consumer config: RetryMaxBackoff 1ms is below RetryMinBackoff 1s",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := consumer.Run(t.Context(), tt.cfg)
			if err == nil || err.Error() != tt.wantErr {
				t.Fatalf("Run() error = %v, want %q", err, tt.wantErr)
			}
		})
	}
}
