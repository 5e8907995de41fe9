package baseline_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/google/go-cmp/cmp"
	"github.com/segmentio/kafka-go"

	"github.com/reeferdlq/reefer-dlq/bench/baseline"
	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/failure"
	"github.com/reeferdlq/reefer-dlq/pkg/platform/devbroker"
	"github.com/reeferdlq/reefer-dlq/pkg/platform/kafkaclient"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/allocation"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/events"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/orders"
)

// failing fails its first failures calls with err, then allocates.
type failing struct {
	failures int
	err      error
	calls    []time.Time
}

func (f *failing) Allocate(_ context.Context, o events.OrderCreated) (allocation.Result, error) {
	f.calls = append(f.calls, time.Now())
	if len(f.calls) <= f.failures {
		return allocation.Result{}, f.err
	}
	return allocation.Result{Outcome: allocation.Allocated, OrderID: o.OrderID, ContainerID: "R-1"}, nil
}

var (
	transient = failure.NewTransient("http-503", errors.New("503"))
	permanent = failure.NewPermanent("http-422", errors.New("422"))
)

func TestBlockingRetriesCallAgainInPlace(t *testing.T) {
	const delay = 5 * time.Millisecond
	tests := []struct {
		name      string
		wrap      func(orders.Allocator) orders.Allocator
		failures  int
		err       error
		wantCalls int
		wantErr   error
		// minGaps are the least waits between consecutive calls.
		minGaps []time.Duration
	}{
		{"sleeping: succeeds on the third attempt after 1 and 2 delays", sleeping(delay), 2, transient, 3, nil, []time.Duration{delay, 2 * delay}},
		{"sleeping: gives up after 5 attempts", sleeping(delay), 10, transient, 5, transient, []time.Duration{delay, 2 * delay, 3 * delay, 4 * delay}},
		{"sleeping: permanent error at once", sleeping(delay), 10, permanent, 1, permanent, nil},
		{"watermill: exponential, succeeds on the third attempt", watermill(delay), 2, transient, 3, nil, []time.Duration{delay / 2, delay}},
		{"watermill: gives up after MaxRetries", watermill(delay), 10, transient, 5, transient, []time.Duration{delay / 2, delay, 2 * delay, 4 * delay}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &failing{failures: tt.failures, err: tt.err}
			res, err := tt.wrap(f).Allocate(t.Context(), events.OrderCreated{OrderID: "O-1", Quantity: 1})
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("error %v, want %v", err, tt.wantErr)
			}
			if err == nil && res.ContainerID != "R-1" {
				t.Errorf("result %+v, want the allocation", res)
			}
			if len(f.calls) != tt.wantCalls {
				t.Fatalf("%d calls, want %d", len(f.calls), tt.wantCalls)
			}
			for i, min := range tt.minGaps {
				if gap := f.calls[i+1].Sub(f.calls[i]); gap < min {
					t.Errorf("wait before call %d: %s, want at least %s", i+2, gap, min)
				}
			}
		})
	}
}

func sleeping(delay time.Duration) func(orders.Allocator) orders.Allocator {
	return func(next orders.Allocator) orders.Allocator {
		return baseline.SleepingRetry{Next: next, Attempts: 5, Delay: delay}
	}
}

func watermill(delay time.Duration) func(orders.Allocator) orders.Allocator {
	return func(next orders.Allocator) orders.Allocator {
		// RandomizationFactor 0.5 at most halves a wait: the gaps above.
		return baseline.WatermillRetry{Next: next, Retry: middleware.Retry{
			MaxRetries: 4, InitialInterval: delay, Multiplier: 2, MaxInterval: time.Second, MaxElapsedTime: time.Minute, RandomizationFactor: 0.5,
		}}
	}
}

func TestSleepingRetryStopsWithTheContext(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	f := &failing{failures: 10, err: transient}
	start := time.Now()
	_, err := baseline.SleepingRetry{Next: f, Attempts: 5, Delay: time.Hour}.Allocate(ctx, events.OrderCreated{OrderID: "O-1"})
	// The delay is an hour: a bound far above the context's 20 ms (for a
	// loaded -race run) and far below the hour proves it stopped.
	if !errors.Is(err, transient) || time.Since(start) > 20*time.Second {
		t.Errorf("got %v after %s, want the last failure soon after the context ended", err, time.Since(start))
	}
}

// TestPartitionListenersPauseUntilEachHeadIsDue runs the pause-until-due
// consumer on the embedded broker: every record runs at or after its due
// time, in offset order within its partition, so a record due early waits
// for the head due later (head-of-line blocking).
func TestPartitionListenersPauseUntilEachHeadIsDue(t *testing.T) {
	b, err := devbroker.Start(t.Context(), devbroker.Config{Topics: map[string]int{"retries": 2}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	kc := kafkaclient.Config{Brokers: []string{b.Addr()}}

	base := time.Now().Add(300 * time.Millisecond).Truncate(time.Millisecond)
	dueIn := map[string]time.Duration{"p0-late": 400 * time.Millisecond, "p0-early": 0, "p1-only": 100 * time.Millisecond}
	w, err := kc.NewWriter("retries")
	if err != nil {
		t.Fatal(err)
	}
	w.Balancer = kafka.BalancerFunc(func(m kafka.Message, _ ...int) int {
		if string(m.Key[:2]) == "p1" {
			return 1
		}
		return 0
	})
	var msgs []kafka.Message
	for _, k := range []string{"p0-late", "p0-early", "p1-only"} {
		msgs = append(msgs, kafka.Message{Key: []byte(k), Value: []byte(fmt.Sprint(base.Add(dueIn[k]).UnixMilli()))})
	}
	if err := w.WriteMessages(t.Context(), msgs...); err != nil {
		t.Fatal(err)
	}
	w.Close()

	dueAt := func(m kafka.Message) time.Time {
		var ms int64
		fmt.Sscan(string(m.Value), &ms)
		return time.UnixMilli(ms)
	}
	var mu sync.Mutex
	started := map[string]time.Time{}
	var order []string
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- baseline.PartitionListeners{Kafka: kc, Topic: "retries", Partitions: 2,
			Handle: baseline.PauseUntilDue(dueAt, func(_ context.Context, m kafka.Message) error {
				mu.Lock()
				defer mu.Unlock()
				started[string(m.Key)] = time.Now()
				order = append(order, string(m.Key))
				if len(order) == 3 {
					cancel()
				}
				return nil
			})}.Run(ctx)
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("records not handled within 20 s")
	}
	// Within partition 0, offset order: the early record waits for the
	// late head. (Across partitions the order depends on when each
	// listener joins, which a loaded machine moves.)
	var p0 []string
	for _, k := range order {
		if strings.HasPrefix(k, "p0") {
			p0 = append(p0, k)
		}
	}
	if diff := cmp.Diff([]string{"p0-late", "p0-early"}, p0); diff != "" {
		t.Errorf("handling order of partition 0 (-want +got):\n%s", diff)
	}
	for k, d := range dueIn {
		if due := base.Add(d); started[k].Before(due) {
			t.Errorf("%s started %s before its due time", k, due.Sub(started[k]))
		}
	}
	// The early record waited for the late head of its partition (a lower
	// bound: load only adds time).
	if late := started["p0-early"].Sub(base); late < 400*time.Millisecond {
		t.Errorf("p0-early started %s after its due time, want it held behind p0-late (400 ms)", late)
	}
}
