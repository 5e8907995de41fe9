package consumer_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/consumer"
	"github.com/reeferdlq/reefer-dlq/pkg/platform/devbroker"
)

// The tests run against devbroker (kfake, an in-process Kafka-protocol
// broker) through real kafka-go clients: group joins, fetches and commits
// are the real ones.

const topic = "orders"

// startBroker starts a one-broker cluster with topic and returns its address.
func startBroker(t *testing.T, partitions int) string {
	t.Helper()
	b, err := devbroker.Start(t.Context(), devbroker.Config{Topics: map[string]int{topic: partitions}})
	if err != nil {
		t.Fatalf("start broker: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	return b.Addr()
}

// produce writes msgs to topic, in order, to partition 0 unless they have a key.
func produce(t *testing.T, addr string, msgs ...kafka.Message) {
	t.Helper()
	w := &kafka.Writer{
		Addr:         kafka.TCP(addr),
		Topic:        topic,
		Balancer:     &kafka.Hash{},
		BatchTimeout: time.Millisecond,
		RequiredAcks: kafka.RequireAll,
	}
	defer w.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second) // generous: a loaded -race run
	defer cancel()
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatalf("produce %d records: %v", len(msgs), err)
	}
}

// values returns n records with values v0..v(n-1) and no key.
func values(n int) []kafka.Message {
	msgs := make([]kafka.Message, n)
	for i := range msgs {
		msgs[i] = kafka.Message{Value: fmt.Appendf(nil, "v%d", i)}
	}
	return msgs
}

// newReader returns a group member of group, tuned to join and fetch fast.
// running.stop closes it; the cleanup closes it again in case the test
// failed earlier (a second Close is harmless).
func newReader(t *testing.T, addr, group string) *kafka.Reader {
	t.Helper()
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:           []string{addr},
		GroupID:           group,
		Topic:             topic,
		MaxWait:           50 * time.Millisecond,
		HeartbeatInterval: 200 * time.Millisecond,
		JoinGroupBackoff:  50 * time.Millisecond,
		ReadBackoffMin:    10 * time.Millisecond,
		ReadBackoffMax:    50 * time.Millisecond,
		StartOffset:       kafka.FirstOffset,
	})
	t.Cleanup(func() { r.Close() })
	return r
}

// committed returns the group's committed offset of each partition (-1: none).
func committed(t *testing.T, addr, group string, partitions int) map[int]int64 {
	t.Helper()
	ids := make([]int, partitions)
	for i := range ids {
		ids[i] = i
	}
	client := &kafka.Client{Addr: kafka.TCP(addr), Timeout: 5 * time.Second}
	resp, err := client.OffsetFetch(t.Context(), &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: ids}})
	if err != nil {
		t.Fatalf("offset fetch: %v", err)
	}
	if resp.Error != nil {
		t.Fatalf("offset fetch: %v", resp.Error)
	}
	out := map[int]int64{}
	for _, p := range resp.Topics[topic] {
		if p.Error != nil {
			t.Fatalf("offset fetch partition %d: %v", p.Partition, p.Error)
		}
		out[p.Partition] = p.CommittedOffset
	}
	return out
}

// groupName derives a consumer group from the test name.
func groupName(t *testing.T) string {
	return strings.NewReplacer("/", "-", " ", "-").Replace(t.Name())
}

// running is a consumer.Run in the background.
type running struct {
	cancel context.CancelFunc
	done   chan error
	reader consumer.Reader
}

func start(t *testing.T, cfg consumer.Config) *running {
	t.Helper()
	if cfg.Log == nil {
		cfg.Log = testLogger(t)
	}
	ctx, cancel := context.WithCancel(t.Context())
	r := &running{cancel: cancel, done: make(chan error, 1), reader: cfg.Reader}
	go func() { r.done <- consumer.Run(ctx, cfg) }()
	t.Cleanup(func() {
		cancel()
		<-r.done
	})
	return r
}

// stop cancels the Run's context and returns Run's result. Then it closes
// the reader, in that order (a commit racing with Close can block forever),
// which also makes the member leave the group at once.
func (r *running) stop(t *testing.T) error {
	t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		r.done <- err // for the cleanup
		if c, ok := r.reader.(io.Closer); ok {
			if cerr := c.Close(); cerr != nil {
				t.Errorf("close reader: %v", cerr)
			}
		}
		return err
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return after its context was cancelled")
		return nil
	}
}

// commitLog collects OnCommitted calls and lets a test wait for an offset.
type commitLog struct {
	mu      sync.Mutex
	offsets []int64 // partition 0
	changed chan struct{}
}

func newCommitLog() *commitLog { return &commitLog{changed: make(chan struct{}, 1)} }

func (c *commitLog) hook(partition int, offset int64) {
	if partition != 0 {
		return
	}
	c.mu.Lock()
	c.offsets = append(c.offsets, offset)
	c.mu.Unlock()
	select {
	case c.changed <- struct{}{}:
	default:
	}
}

func (c *commitLog) last() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.offsets) == 0 {
		return -1
	}
	return c.offsets[len(c.offsets)-1]
}

func (c *commitLog) all() []int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]int64(nil), c.offsets...)
}

// waitFor waits until partition 0's committed offset reaches want.
func (c *commitLog) waitFor(t *testing.T, want int64) {
	t.Helper()
	timeout := time.After(30 * time.Second) // generous: a loaded -race run
	for c.last() < want {
		select {
		case <-c.changed:
		case <-timeout:
			t.Fatalf("committed offset is %d, want %d", c.last(), want)
		}
	}
}

// waitClosed waits for ch to be closed, naming what it waits for.
func waitClosed(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(30 * time.Second): // generous: a loaded -race run
		t.Fatalf("timed out waiting for %s", what)
	}
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}
