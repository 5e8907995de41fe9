package kafkaclient_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/segmentio/kafka-go"

	"github.com/reeferdlq/reefer-dlq/pkg/platform/devbroker"
	"github.com/reeferdlq/reefer-dlq/pkg/platform/kafkaclient"
)

// startBroker starts an embedded broker with topics and returns a client
// config pointing at it.
func startBroker(t *testing.T, topics map[string]int) (*devbroker.Broker, kafkaclient.Config) {
	t.Helper()
	b, err := devbroker.Start(t.Context(), devbroker.Config{Topics: topics})
	if err != nil {
		t.Fatalf("start broker: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	return b, kafkaclient.Config{Brokers: []string{b.Addr()}, ClientID: t.Name()}
}

// fetchN fetches n messages, failing the test if they do not come in time.
func fetchN(t *testing.T, r *kafka.Reader, n int) []kafka.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	msgs := make([]kafka.Message, 0, n)
	for len(msgs) < n {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			t.Fatalf("fetch message %d of %d: %v", len(msgs)+1, n, err)
		}
		msgs = append(msgs, m)
	}
	return msgs
}

func closeReader(t *testing.T, r *kafka.Reader) {
	t.Helper()
	if err := r.Close(); err != nil {
		t.Errorf("close reader: %v", err)
	}
}

func TestWriterAndGroupReaderRoundTrip(t *testing.T) {
	b, cfg := startBroker(t, nil)
	ctx := t.Context()
	if err := cfg.EnsureTopics(ctx, kafkaclient.DefaultTopics()); err != nil {
		t.Fatalf("EnsureTopics: %v", err)
	}

	w, err := cfg.NewWriter("orders")
	if err != nil {
		t.Fatalf("NewWriter: %v", err)
	}
	var sent []kafka.Message
	for i := range 12 {
		sent = append(sent, kafka.Message{
			Key:     fmt.Appendf(nil, "order-%d", i%3),
			Value:   fmt.Appendf(nil, `{"n":%d}`, i),
			Headers: []kafka.Header{{Key: "x-retry-attempt", Value: fmt.Appendf(nil, "%d", i)}},
		})
	}
	if err := w.WriteMessages(ctx, sent...); err != nil {
		t.Fatalf("WriteMessages: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("close writer: %v", err)
	}

	// The group is new and the records were written before it existed:
	// StartOffset FirstOffset means it still reads them all.
	r, err := cfg.NewReader(kafka.ReaderConfig{GroupID: "reefer-manager", Topic: "orders"})
	if err != nil {
		t.Fatalf("NewReader: %v", err)
	}
	got := fetchN(t, r, len(sent))
	commitCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := r.CommitMessages(commitCtx, got...); err != nil {
		t.Fatalf("CommitMessages: %v", err)
	}
	closeReader(t, r)

	// Same key, same partition, and in the order written.
	partitionOf := map[string]int{}
	valuesByKey := map[string][]string{}
	for _, m := range got {
		k := string(m.Key)
		if p, ok := partitionOf[k]; ok && p != m.Partition {
			t.Errorf("key %s went to partitions %d and %d: want one partition per key", k, p, m.Partition)
		}
		partitionOf[k] = m.Partition
		valuesByKey[k] = append(valuesByKey[k], string(m.Value))
		if len(m.Headers) != 1 || m.Headers[0].Key != "x-retry-attempt" {
			t.Errorf("message %s headers = %v, want the x-retry-attempt header", m.Value, m.Headers)
		}
	}
	wantByKey := map[string][]string{}
	for _, m := range sent {
		wantByKey[string(m.Key)] = append(wantByKey[string(m.Key)], string(m.Value))
	}
	if diff := cmp.Diff(wantByKey, valuesByKey); diff != "" {
		t.Errorf("values per key, in order (-want +got):\n%s", diff)
	}

	// The synchronous commit is on the broker: one offset past each
	// partition's last record.
	info := b.Cluster().GroupInfo("reefer-manager")
	if info == nil {
		t.Fatal("group reefer-manager does not exist on the broker")
	}
	lastOffset := map[int32]int64{}
	for _, m := range got {
		lastOffset[int32(m.Partition)] = max(lastOffset[int32(m.Partition)], m.Offset)
	}
	for p, last := range lastOffset {
		if c := info.Commits["orders"][p]; c.Offset != last+1 {
			t.Errorf("committed offset of orders/%d = %d, want %d", p, c.Offset, last+1)
		}
	}
}

func TestWriterWithoutTopicWritesWhereEachMessageSays(t *testing.T) {
	_, cfg := startBroker(t, map[string]int{"orders": 1, "containers": 1})
	ctx := t.Context()
	w, err := cfg.NewWriter("")
	if err != nil {
		t.Fatalf("NewWriter: %v", err)
	}
	defer w.Close()
	if err := w.WriteMessages(ctx,
		kafka.Message{Topic: "orders", Key: []byte("o1"), Value: []byte("to orders")},
		kafka.Message{Topic: "containers", Key: []byte("c1"), Value: []byte("to containers")},
	); err != nil {
		t.Fatalf("WriteMessages: %v", err)
	}
	for topic, want := range map[string]string{"orders": "to orders", "containers": "to containers"} {
		r, err := cfg.NewReader(kafka.ReaderConfig{GroupID: "check-" + topic, Topic: topic})
		if err != nil {
			t.Fatalf("NewReader: %v", err)
		}
		if got := fetchN(t, r, 1)[0]; string(got.Value) != want {
			t.Errorf("%s holds %q, want %q", topic, got.Value, want)
		}
		closeReader(t, r)
	}
}

func TestWriterDoesNotCreateTopics(t *testing.T) {
	// The broker would auto-create; the writer must not ask it to.
	b, err := devbroker.Start(t.Context(), devbroker.Config{AutoCreate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	cfg := kafkaclient.Config{Brokers: []string{b.Addr()}}
	w, err := cfg.NewWriter("ordres") // a typo
	if err != nil {
		t.Fatal(err)
	}
	w.MaxAttempts = 1
	defer w.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second) // generous: a loaded -race run
	defer cancel()
	if err := w.WriteMessages(ctx, kafka.Message{Value: []byte("x")}); err == nil {
		t.Error("WriteMessages to a missing topic succeeded, want an error")
	}
	if b.Cluster().TopicInfo("ordres") != nil {
		t.Error("the writer created topic ordres")
	}
}

func TestEnsureTopicsCreatesMissingTopicsOnce(t *testing.T) {
	b, cfg := startBroker(t, map[string]int{"containers": 2})
	ctx := t.Context()
	for round := range 2 {
		if err := cfg.EnsureTopics(ctx, kafkaclient.DefaultTopics()); err != nil {
			t.Fatalf("EnsureTopics round %d: %v", round+1, err)
		}
	}
	got := map[string]int{}
	for topic := range kafkaclient.DefaultTopics() {
		got[topic] = len(b.Cluster().PartitionInfos(topic))
	}
	// containers existed with 2 partitions and is left alone.
	want := map[string]int{"orders": 6, "containers": 2, "order-retries": 6, "order-dead-letter": 3}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("partitions per topic (-want +got):\n%s", diff)
	}
}

func TestEnsureTopicsRejectsBadInput(t *testing.T) {
	_, cfg := startBroker(t, map[string]int{"order_retries": 1})
	tests := []struct {
		name   string
		topics map[string]int
		want   string
	}{
		{"zero partitions", map[string]int{"orders": 0}, "topic orders: 0 partitions: want at least 1"},
		{"empty name", map[string]int{"": 1}, "empty topic name"},
		{"character Kafka refuses", map[string]int{"bad/name": 1}, `topic name "bad/name" has '/'`},
		// Kafka refuses names that differ only in '.' and '_' (metric names collide).
		{"name the broker refuses", map[string]int{"order.retries": 1}, "create order.retries with 1 partitions"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := cfg.EnsureTopics(t.Context(), tt.topics)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("EnsureTopics() = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestPingReachesTheBrokerWithinTheDeadline(t *testing.T) {
	_, cfg := startBroker(t, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second) // generous: a loaded -race run
	defer cancel()
	if err := cfg.Ping(ctx); err != nil {
		t.Errorf("Ping against a running broker: %v", err)
	}

	// Nothing listens on a port we just released.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := ln.Addr().String()
	ln.Close()
	dead := kafkaclient.Config{Brokers: []string{deadAddr}}
	ctx, cancel = context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- dead.Ping(ctx) }()
	select {
	case err := <-done:
		if err == nil {
			t.Error("Ping against a closed port succeeded")
		}
	case <-time.After(30 * time.Second): // generous: a loaded -race run
		t.Fatal("Ping ignored its context deadline")
	}
}

func TestCustomDialOpensEveryConnection(t *testing.T) {
	// The broker advertises a name that does not resolve; Dial maps it to
	// the broker, as a test does with a container's published port.
	b, err := devbroker.Start(t.Context(), devbroker.Config{Advertise: "kafka.invalid", Topics: map[string]int{"orders": 1}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	_, port, _ := net.SplitHostPort(b.Addr())
	var dials atomic.Int64
	cfg := kafkaclient.Config{Brokers: []string{b.Addr()}}
	cfg.Dial = func(ctx context.Context, network, address string) (net.Conn, error) {
		dials.Add(1)
		host, p, err := net.SplitHostPort(address)
		if err != nil || host != "kafka.invalid" || p != port {
			return nil, fmt.Errorf("unexpected address %q", address)
		}
		return (&net.Dialer{}).DialContext(ctx, network, net.JoinHostPort("127.0.0.1", port))
	}
	ctx := t.Context()
	if err := cfg.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	w, err := cfg.NewWriter("orders")
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteMessages(ctx, kafka.Message{Key: []byte("k"), Value: []byte("v")}); err != nil {
		t.Fatalf("WriteMessages: %v", err)
	}
	w.Close()
	r, err := cfg.NewReader(kafka.ReaderConfig{GroupID: "g", Topic: "orders"})
	if err != nil {
		t.Fatal(err)
	}
	if got := fetchN(t, r, 1)[0]; string(got.Value) != "v" {
		t.Errorf("read %q, want v", got.Value)
	}
	closeReader(t, r)
	if dials.Load() == 0 {
		t.Error("Dial was never called")
	}
}

// TestCommitWithoutDeadlineCanHangAfterClose shows the kafka-go pitfall the
// package documentation warns about. After Close, CommitMessages either sees
// the reader closed (io.ErrClosedPipe) or queues its request for a commit
// goroutine that no longer exists and waits for an answer that never comes:
// only the context ends that wait. Each call below has a deadline; one that
// returns DeadlineExceeded is one that, without a deadline, would have
// blocked forever.
func TestCommitWithoutDeadlineCanHangAfterClose(t *testing.T) {
	r, msg := readOne(t)
	if err := r.Close(); err != nil {
		t.Fatalf("close reader: %v", err)
	}

	const calls = 32 // below the reader's queue capacity (100)
	results := make(chan error, calls)
	for range calls {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			results <- r.CommitMessages(ctx, msg)
		}()
	}
	var closed, stuck int
	for range calls {
		switch err := <-results; {
		case errors.Is(err, io.ErrClosedPipe):
			closed++
		case errors.Is(err, context.DeadlineExceeded):
			stuck++
		default:
			t.Errorf("CommitMessages after Close = %v, want io.ErrClosedPipe or context.DeadlineExceeded", err)
		}
	}
	t.Logf("after Close: %d commits saw the reader closed, %d waited until their deadline", closed, stuck)
	// Go picks among ready select cases at random: with 32 calls, the
	// chance that none queued its request is 2^-32.
	if stuck == 0 {
		t.Error("no commit waited for its deadline: the pitfall did not show (did kafka-go fix it? then update doc.go)")
	}
}

// TestCommitWithDeadlineReturnsWhileClosing races commits against Close:
// each commit with a deadline returns, whatever wins.
func TestCommitWithDeadlineReturnsWhileClosing(t *testing.T) {
	for round := range 3 {
		t.Run(fmt.Sprintf("round %d", round+1), func(t *testing.T) {
			r, msg := readOne(t)
			var wg sync.WaitGroup
			errs := make(chan error, 8)
			for range 8 {
				wg.Go(func() {
					ctx, cancel := context.WithTimeout(context.Background(), time.Second)
					defer cancel()
					errs <- r.CommitMessages(ctx, msg)
				})
			}
			wg.Go(func() {
				if err := r.Close(); err != nil {
					t.Errorf("close reader: %v", err)
				}
			})
			done := make(chan struct{})
			go func() { wg.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(15 * time.Second):
				t.Fatal("CommitMessages with a deadline did not return while the reader closed")
			}
			close(errs)
			for err := range errs {
				if err != nil && !errors.Is(err, io.ErrClosedPipe) && !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("CommitMessages = %v, want nil, io.ErrClosedPipe or context.DeadlineExceeded", err)
				}
			}
		})
	}
}

// readOne starts a broker, writes one record and returns a group reader that
// has fetched it (so it holds a generation and a commit goroutine).
func readOne(t *testing.T) (*kafka.Reader, kafka.Message) {
	t.Helper()
	_, cfg := startBroker(t, map[string]int{"orders": 1})
	w, err := cfg.NewWriter("orders")
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteMessages(t.Context(), kafka.Message{Key: []byte("k"), Value: []byte("v")}); err != nil {
		t.Fatalf("WriteMessages: %v", err)
	}
	w.Close()
	r, err := cfg.NewReader(kafka.ReaderConfig{GroupID: "pitfall", Topic: "orders"})
	if err != nil {
		t.Fatal(err)
	}
	return r, fetchN(t, r, 1)[0]
}

// TestWriterCloseReleasesItsConnections guards the reason NewWriter is built
// the way it is: after Close, no goroutine of the writer (metadata refresh,
// connections) is left behind.
func TestWriterCloseReleasesItsConnections(t *testing.T) {
	_, cfg := startBroker(t, map[string]int{"orders": 3})
	before := runtime.NumGoroutine()
	for range 5 {
		w, err := cfg.NewWriter("orders")
		if err != nil {
			t.Fatal(err)
		}
		if err := w.WriteMessages(t.Context(), kafka.Message{Key: []byte("k"), Value: []byte("v")}); err != nil {
			t.Fatalf("WriteMessages: %v", err)
		}
		if err := w.Close(); err != nil {
			t.Fatalf("close writer: %v", err)
		}
	}
	// Connections close asynchronously on both ends; give them a moment
	// (generous: the bound matters only when a goroutine leaks).
	deadline := time.Now().Add(30 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if after := runtime.NumGoroutine(); after > before {
		t.Errorf("%d goroutines before five writers, %d after they were closed: a writer leaks", before, after)
	}
}
