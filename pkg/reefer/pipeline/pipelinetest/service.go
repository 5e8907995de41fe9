package pipelinetest

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/reeferdlq/reefer-dlq/pkg/platform/kafkaclient"
)

// Service is a service's Run running in the background of a test. Start
// stops it gracefully when the test ends, unless the test stopped it
// before, and prints its log when the test failed.
type Service struct {
	cancel   context.CancelFunc
	done     chan error
	logs     *SyncBuffer
	shutdown time.Duration
	once     sync.Once
	err      error
}

// Start runs run (a service's Run with its Config bound) with a JSON
// logger at level that the test can read (Logs); shutdown is the
// service's SHUTDOWN_TIMEOUT, which bounds Stop.
func Start(t testing.TB, level slog.Level, shutdown time.Duration, run func(ctx context.Context, log *slog.Logger) error) *Service {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &Service{cancel: cancel, done: make(chan error, 1), logs: &SyncBuffer{}, shutdown: shutdown}
	log := slog.New(slog.NewJSONHandler(s.logs, &slog.HandlerOptions{Level: level}))
	go func() { s.done <- run(ctx, log) }()
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("service stopped with: %v", err)
		}
		if t.Failed() {
			t.Logf("service log:\n%s", s.logs.String())
		}
	})
	return s
}

// Stop cancels the service and waits for Run to return.
func (s *Service) Stop() error {
	s.once.Do(func() {
		s.cancel()
		select {
		case s.err = <-s.done:
		case <-time.After(s.shutdown + 20*time.Second):
			s.err = errors.New("the service's Run did not return after shutdown")
		}
	})
	return s.err
}

// Done delivers Run's error when it returns before Stop.
func (s *Service) Done() <-chan error { return s.done }

// Logs is what the service logged so far.
func (s *Service) Logs() string { return s.logs.String() }

// SyncBuffer is a log sink the service writes while the test reads.
type SyncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// FreeAddr returns a loopback address with a port that was free a moment
// ago, for the ops server (Run does not report the port it bound).
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// WaitFor polls cond until it holds or timeout passes. Tests give bounds
// of minutes: a bound only matters when cond never holds, and on a loaded
// 2-core -race run (load 50) SQLite statements took 200-600 ms each, so
// 72 orders took longer than 30 s.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ReadAll returns every record of topic (partitions 0 to partitions-1),
// partition by partition in order, up to ends (per partition, the offset
// the next record will get).
func ReadAll(t testing.TB, brokers []string, topic string, partitions int, ends map[int]int64) []kafka.Message {
	t.Helper()
	var out []kafka.Message
	for p := range partitions {
		if ends[p] == 0 {
			continue
		}
		r := kafka.NewReader(kafka.ReaderConfig{
			Brokers: brokers, Topic: topic, Partition: p, MinBytes: 1, MaxBytes: 10 << 20, MaxWait: 100 * time.Millisecond,
		})
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		for {
			m, err := r.ReadMessage(ctx)
			if err != nil {
				cancel()
				r.Close()
				t.Fatalf("read %s/%d: %v", topic, p, err)
			}
			out = append(out, m)
			if m.Offset >= ends[p]-1 {
				break
			}
		}
		cancel()
		r.Close()
	}
	return out
}

// Environ is a stage's environment in a test: the broker, the database
// and the inventory given, a free HTTP address, the settings every test
// shares, then own (the service's, say a quicker retry), then extra (the
// test's).
func Environ(t testing.TB, broker, databaseURL, inventoryURL string, own, extra map[string]string) map[string]string {
	m := map[string]string{
		"KAFKA_BROKERS":      broker,
		"DATABASE_URL":       databaseURL,
		"INVENTORY_URL":      inventoryURL,
		"HTTP_ADDR":          FreeAddr(t),
		"SHUTDOWN_TIMEOUT":   "10s",
		"RETRY_MAX_ATTEMPTS": "5",
		// Far above any healthy call: on a loaded -race run a slow call
		// must not become a failure that changes a test's outcome.
		"INVENTORY_TIMEOUT": "20s",
	}
	maps.Copy(m, own)
	maps.Copy(m, extra)
	return m
}

// Config reads a service's Config from env with its ConfigFromEnv, and
// fails the test when it does not parse.
func Config[C any](t testing.TB, fromEnv func(func(string) string) (C, error), env map[string]string) C {
	t.Helper()
	cfg, err := fromEnv(Getenv(env))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// Client is a kafka-go client of the broker kc names; close it with the
// returned function.
func Client(t testing.TB, kc kafkaclient.Config) (*kafka.Client, func()) {
	t.Helper()
	tr, err := kc.Transport()
	if err != nil {
		t.Fatal(err)
	}
	return &kafka.Client{Addr: kafka.TCP(kc.Brokers...), Transport: tr}, tr.CloseIdleConnections
}

// Ends returns, per partition of topic (0 to partitions-1), the offset
// the next record will get.
func Ends(t testing.TB, kc kafkaclient.Config, topic string, partitions int) map[int]int64 {
	t.Helper()
	client, closeClient := Client(t, kc)
	defer closeClient()
	var reqs []kafka.OffsetRequest
	for p := range partitions {
		reqs = append(reqs, kafka.LastOffsetOf(p))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second) // generous: a loaded -race run
	defer cancel()
	resp, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
	if err != nil {
		t.Fatalf("list offsets of %s: %v", topic, err)
	}
	out := map[int]int64{}
	for _, p := range resp.Topics[topic] {
		if p.Error != nil {
			t.Fatalf("list offsets of %s/%d: %v", topic, p.Partition, p.Error)
		}
		out[p.Partition] = p.LastOffset
	}
	return out
}
