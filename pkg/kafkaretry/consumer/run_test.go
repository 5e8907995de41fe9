package consumer_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/segmentio/kafka-go"

	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/consumer"
)

// fakeReader serves msgs, then, once hold is closed (if set), fetchErr (or
// blocks until ctx ends when fetchErr is nil); commit decides the outcome of
// each CommitMessages call.
type fakeReader struct {
	msgs     []kafka.Message
	hold     chan struct{}
	fetchErr error
	commit   func(ctx context.Context, call int, msgs []kafka.Message) error

	mu      sync.Mutex
	calls   int
	commits [][]kafka.Message // successful ones
}

func (r *fakeReader) FetchMessage(ctx context.Context) (kafka.Message, error) {
	r.mu.Lock()
	if len(r.msgs) > 0 {
		m := r.msgs[0]
		r.msgs = r.msgs[1:]
		r.mu.Unlock()
		return m, nil
	}
	r.mu.Unlock()
	if r.hold != nil {
		select {
		case <-r.hold:
		case <-ctx.Done():
			return kafka.Message{}, ctx.Err()
		}
	}
	if r.fetchErr != nil {
		return kafka.Message{}, r.fetchErr
	}
	<-ctx.Done()
	return kafka.Message{}, ctx.Err()
}

func (r *fakeReader) CommitMessages(ctx context.Context, msgs ...kafka.Message) error {
	r.mu.Lock()
	r.calls++
	call := r.calls
	r.mu.Unlock()
	if r.commit != nil {
		if err := r.commit(ctx, call, msgs); err != nil {
			return err
		}
	}
	r.mu.Lock()
	r.commits = append(r.commits, slices.Clone(msgs))
	r.mu.Unlock()
	return nil
}

// committedOffsets flattens the successful commits to topic/partition@offset.
func (r *fakeReader) committedOffsets() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, c := range r.commits {
		for _, m := range c {
			out = append(out, fmt.Sprintf("%s/%d@%d", m.Topic, m.Partition, m.Offset))
		}
	}
	return out
}

func ok(context.Context, kafka.Message) error { return nil }

func TestRunKeepsAFailedCommitAndRetriesIt(t *testing.T) {
	r := &fakeReader{
		msgs: []kafka.Message{{Topic: "orders", Offset: 0}, {Topic: "orders", Offset: 1}},
		commit: func(_ context.Context, call int, _ []kafka.Message) error {
			if call == 1 {
				return errors.New("coordinator not available")
			}
			return nil
		},
	}
	commits := newCommitLog()
	run := start(t, consumer.Config{Reader: r, Handler: ok, CommitInterval: time.Millisecond, OnCommitted: commits.hook})
	commits.waitFor(t, 2)
	if err := run.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if got := r.committedOffsets(); len(got) == 0 || got[len(got)-1] != "orders/0@1" {
		t.Errorf("successful commits %v: want the last one to be orders/0@1 (kafka-go then stores 2)", got)
	}
}

func TestRunGivesEveryCommitADeadline(t *testing.T) {
	r := &fakeReader{
		msgs: []kafka.Message{{Topic: "orders", Offset: 0}},
		commit: func(ctx context.Context, _ int, _ []kafka.Message) error {
			if _, ok := ctx.Deadline(); !ok {
				return errors.New("test: commit without a deadline")
			}
			<-ctx.Done() // a commit that hangs, as kafka-go's can while closing
			return ctx.Err()
		},
	}
	handled := make(chan struct{})
	run := start(t, consumer.Config{
		Reader:         r,
		Handler:        func(context.Context, kafka.Message) error { close(handled); return nil },
		CommitInterval: time.Millisecond,
		CommitTimeout:  10 * time.Millisecond,
	})
	waitClosed(t, handled, "the record to be handled")
	if err := run.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.calls == 0 {
		t.Fatal("no commit was attempted")
	}
}

func TestRunCommitsEachTopicSeparately(t *testing.T) {
	r := &fakeReader{
		msgs: []kafka.Message{
			{Topic: "orders", Partition: 0, Offset: 0},
			{Topic: "containers", Partition: 0, Offset: 0},
			{Topic: "orders", Partition: 0, Offset: 1},
		},
		hold:     make(chan struct{}),
		fetchErr: io.EOF, // the reader was closed under Run
	}
	var mu sync.Mutex
	handled := 0
	handler := func(context.Context, kafka.Message) error {
		mu.Lock()
		defer mu.Unlock()
		if handled++; handled == 3 {
			close(r.hold)
		}
		return nil
	}
	err := consumer.Run(t.Context(), consumer.Config{Reader: r, Handler: handler, CommitInterval: time.Hour, Log: testLogger(t)})
	if !errors.Is(err, io.EOF) {
		t.Fatalf("Run() = %v, want the fetch error", err)
	}
	// Run drained and made its final commit before returning the error.
	if diff := cmp.Diff([]string{"containers/0@0", "orders/0@1"}, r.committedOffsets()); diff != "" {
		t.Errorf("commits (-want +got):\n%s", diff)
	}
}

// failingDispatcher stops on its own, as a broken dispatcher would.
type failingDispatcher struct{ closed chan struct{} }

func (d failingDispatcher) Run(context.Context) error { return errors.New("worker pool crashed") }
func (d failingDispatcher) Dispatch(ctx context.Context, _ kafka.Message, _ consumer.Work) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-d.closed:
		return consumer.ErrClosed
	}
}
func (d failingDispatcher) Close() {}

func TestRunReturnsWhenTheDispatcherStops(t *testing.T) {
	r := &fakeReader{msgs: []kafka.Message{{Topic: "orders"}}}
	done := make(chan error, 1)
	go func() {
		done <- consumer.Run(t.Context(), consumer.Config{
			Reader: r, Handler: ok, Dispatcher: failingDispatcher{closed: make(chan struct{})}, Log: testLogger(t),
		})
	}()
	select {
	case err := <-done:
		if err == nil || err.Error() != "worker pool crashed" {
			t.Fatalf("Run() = %v, want the dispatcher's error", err)
		}
	case <-time.After(30 * time.Second): // generous: a loaded -race run
		t.Fatal("Run did not return after its dispatcher stopped")
	}
}
