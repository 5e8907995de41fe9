package manager_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/reeferdlq/reefer-dlq/pkg/testkit/pgtest"
	"github.com/reeferdlq/reefer-dlq/services/container-inventory-mock/inventorymock"
	"github.com/reeferdlq/reefer-dlq/services/container-inventory-mock/inventorymock/faults"
)

// The benchmarks run the whole path end to end: the in-process broker,
// Postgres in a container (pgtest), the inventory mock over HTTP, and the
// service as main runs it. Each reports orders per second from the first
// produced order to the moment the group has committed the last one (with
// COMMIT_MODE=after-handoff: every order's outcome acknowledged).
//
//	go test -run '^$' -bench . -benchtime 20000x ./manager/

// BenchmarkHappyPath: every order is allocated (database row, inventory
// call, two events).
func BenchmarkHappyPath(b *testing.B) {
	bench := newBenchEnv(b, "healthy")
	rate := bench.run(b, "H", b.N)
	b.ReportMetric(rate, "orders/s")
}

// BenchmarkInputRateInventoryDown measures the pattern's promise: when the
// inventory is down, orders are handed to the retry topic as fast as they
// are allocated when it is up. It runs the same number of orders through a
// healthy inventory and then through one in outage (every call 503; the
// circuit opens and calls fail fast) and reports both rates and their
// ratio (goal >= 0.9).
func BenchmarkInputRateInventoryDown(b *testing.B) {
	healthy := newBenchEnv(b, "healthy")
	up := healthy.run(b, "U", b.N)
	if err := healthy.svc.stop(); err != nil { // leave the CPU to the second run
		b.Fatal(err)
	}
	down := newBenchEnv(b, "outage")
	out := down.run(b, "D", b.N)
	b.ReportMetric(up, "healthy-orders/s")
	b.ReportMetric(out, "down-orders/s")
	b.ReportMetric(out/up, "down/healthy")
}

type benchEnv struct {
	*env
	writer *kafka.Writer
	svc    *service
}

// newBenchEnv starts a broker, Postgres, the inventory mock with the
// given fault preset, and the service; it returns once the service has
// joined its group and concluded a first order.
func newBenchEnv(b *testing.B, preset string) *benchEnv {
	b.Helper()
	b.StopTimer()
	e := newEnv(b)
	profile, ok := faults.Preset(preset)
	if !ok {
		b.Fatalf("no fault preset %q", preset)
	}
	mock, err := inventorymock.New(inventorymock.Config{HTTPAddr: "127.0.0.1:0", FaultProfile: profile}, nil)
	if err != nil {
		b.Fatal(err)
	}
	if err := mock.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = mock.Shutdown(ctx)
	})

	cfg := e.config(map[string]string{
		"DATABASE_URL":      pgtest.Start(b),
		"INVENTORY_URL":     "http://" + mock.Addr(),
		"LOG_LEVEL":         "warn",
		"MAX_IN_FLIGHT":     "256",
		"REEFER_FLEET_SIZE": strconv.Itoa(b.N + 100),
	})
	svc := e.start(cfg)
	w, err := e.kafka.NewWriter("orders")
	if err != nil {
		b.Fatal(err)
	}
	w.BatchSize = 1000
	b.Cleanup(func() { w.Close() })
	bench := &benchEnv{env: e, writer: w, svc: svc}
	bench.produce(b, []kafka.Message{benchOrder(b, "warm-up")})
	e.waitAllCommitted(60 * time.Second)
	return bench
}

// run produces n orders and returns the rate at which the service
// concluded them.
func (e *benchEnv) run(b *testing.B, prefix string, n int) float64 {
	b.Helper()
	msgs := make([]kafka.Message, n)
	for i := range msgs {
		msgs[i] = benchOrder(b, fmt.Sprintf("%s-%07d", prefix, i))
	}
	b.StartTimer()
	start := time.Now()
	e.produce(b, msgs)
	e.waitAllCommitted(10 * time.Minute)
	elapsed := time.Since(start)
	b.StopTimer()
	return float64(n) / elapsed.Seconds()
}

func (e *benchEnv) produce(b *testing.B, msgs []kafka.Message) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// In chunks, so the service starts while the rest is being written.
	for chunk := range slices.Chunk(msgs, 1000) {
		if err := e.writer.WriteMessages(ctx, chunk...); err != nil {
			b.Fatalf("produce: %v", err)
		}
	}
}

// benchOrder is an order every reefer can take, so all are allocated.
func benchOrder(b *testing.B, id string) kafka.Message {
	m := order(b, id, 10)
	m.Topic = "" // the benchmark's writer names the topic
	return m
}
