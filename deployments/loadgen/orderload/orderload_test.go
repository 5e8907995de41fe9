package orderload_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/segmentio/kafka-go"

	"github.com/reeferdlq/reefer-dlq/deployments/loadgen/orderload"
	"github.com/reeferdlq/reefer-dlq/pkg/platform/devbroker"
	"github.com/reeferdlq/reefer-dlq/pkg/platform/kafkaclient"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/events"
)

func TestDue(t *testing.T) {
	cases := []struct {
		elapsed time.Duration
		rate    float64
		total   int
		want    int
	}{
		{0, 10, 100, 1},                       // the first record at once
		{99 * time.Millisecond, 10, 100, 1},   // the second after 1/rate
		{100 * time.Millisecond, 10, 100, 2},  //
		{time.Second, 500, 10000, 501},        //
		{time.Hour, 10, 100, 100},             // never more than the total
		{-time.Second, 10, 100, 0},            // before the start
		{0, 0, 100, 100},                      // rate 0: everything at once
		{1500 * time.Millisecond, 0.5, 10, 1}, // slower than one per second
	}
	for _, tc := range cases {
		if got := orderload.Due(tc.elapsed, tc.rate, tc.total); got != tc.want {
			t.Errorf("Due(%s, %v, %d) = %d, want %d", tc.elapsed, tc.rate, tc.total, got, tc.want)
		}
	}
}

func TestValidateNamesEveryProblem(t *testing.T) {
	valid := orderload.Config{Kafka: kafkaclient.Config{Brokers: []string{"localhost:9092"}}, Topic: "orders", Orders: 1}
	cases := []struct {
		name    string
		change  func(*orderload.Config)
		wantErr string
	}{
		{"valid", func(*orderload.Config) {}, ""},
		{"no orders", func(c *orderload.Config) { c.Orders = 0 }, "orders 0"},
		{"negative rate", func(c *orderload.Config) { c.Rate = -1 }, "rate -1"},
		{"bad topic", func(c *orderload.Config) { c.Topic = "or ders" }, "topic"},
		{"bad broker", func(c *orderload.Config) { c.Kafka.Brokers = []string{"localhost"} }, "KAFKA_BROKERS"},
		{"poison above 1", func(c *orderload.Config) { c.Poison = 1.5 }, "poison 1.5"},
		{"shares above 1", func(c *orderload.Config) { c.Poison, c.Oversize = 0.6, 0.6 }, "add up to more than 1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := valid
			tc.change(&c)
			err := c.Validate()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Validate error %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestGeneratorIsReproducible(t *testing.T) {
	cfg := orderload.Config{RunID: "r1", Seed: 7, Oversize: 0.1, Poison: 0.1}
	at := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	take := func(cfg orderload.Config) []string {
		g := orderload.NewGenerator(cfg)
		var out []string
		for range 200 {
			r, err := g.Next(at)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, string(r.Message.Key)+" "+string(r.Message.Value))
		}
		return out
	}
	a := take(cfg)
	if diff := cmp.Diff(a, take(cfg)); diff != "" {
		t.Fatalf("same seed, different records (-first +second):\n%s", diff)
	}
	cfg.Seed = 8
	if cmp.Equal(a, take(cfg)) {
		t.Fatal("seeds 7 and 8 gave the same records")
	}
}

// startBroker starts an embedded broker with the orders topic.
func startBroker(t *testing.T) kafkaclient.Config {
	t.Helper()
	b, err := devbroker.Start(t.Context(), devbroker.Config{Topics: map[string]int{"orders": 6}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return kafkaclient.Config{Brokers: []string{b.Addr()}}
}

// readAll reads n records of the orders topic.
func readAll(t *testing.T, client kafkaclient.Config, n int) []kafka.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	r, err := client.NewReader(kafka.ReaderConfig{GroupID: "test", Topic: "orders"})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var out []kafka.Message
	for len(out) < n {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			t.Fatalf("after %d of %d records: %v", len(out), n, err)
		}
		out = append(out, m)
	}
	return out
}

func TestRunSendsValidOrdersKeyedByOrderID(t *testing.T) {
	client := startBroker(t)
	var progress []orderload.Report
	rep, err := orderload.Run(t.Context(), orderload.Config{
		Kafka: client, Topic: "orders", Orders: 500, RunID: "t1", Seed: 3,
		Oversize: 0.1, Poison: 0.05,
		Progress: func(r orderload.Report) { progress = append(progress, r) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Sent != 500 || rep.Oversize == 0 || rep.Poison == 0 {
		t.Fatalf("report %+v: want 500 sent, some oversize, some poison", rep)
	}
	if len(progress) == 0 || progress[len(progress)-1] != rep {
		t.Errorf("last progress %v, want the final report %+v", progress, rep)
	}

	seen := map[string]bool{}
	var oversize, poison int
	for _, m := range readAll(t, client, 500) {
		key := string(m.Key)
		if seen[key] || !strings.HasPrefix(key, "O-t1-") {
			t.Fatalf("key %q: want unique keys O-t1-nnnnnn", key)
		}
		seen[key] = true
		env, order, err := events.DecodeOrderCreated(m.Value)
		if err != nil {
			poison++
			continue
		}
		if order.OrderID != key || env.Subject != key || env.Source != orderload.DefaultSource {
			t.Errorf("record %s: order %s, subject %s, source %s", key, order.OrderID, env.Subject, env.Source)
		}
		if order.Quantity == orderload.OversizeQuantity {
			oversize++
		}
	}
	if oversize != rep.Oversize || poison != rep.Poison {
		t.Errorf("read %d oversize and %d poison records; the report says %d and %d", oversize, poison, rep.Oversize, rep.Poison)
	}
}

func TestRunNeverRunsAheadOfTheRate(t *testing.T) {
	client := startBroker(t)
	// 21 records at 100/s: the last is due 200 ms after the first.
	rep, err := orderload.Run(t.Context(), orderload.Config{Kafka: client, Topic: "orders", Orders: 21, Rate: 100})
	if err != nil {
		t.Fatal(err)
	}
	// A lower bound only: a loaded machine can only add time.
	if rep.Elapsed < 200*time.Millisecond {
		t.Errorf("21 records at 100/s took %s: the schedule allows no less than 200ms", rep.Elapsed)
	}
}

func TestRunStopsWhenCancelled(t *testing.T) {
	client := startBroker(t)
	ctx, cancel := context.WithCancel(t.Context())
	var sent int
	rep, err := orderload.Run(ctx, orderload.Config{
		Kafka: client, Topic: "orders", Orders: 1000, Rate: 20,
		Progress: func(r orderload.Report) {
			if sent = r.Sent; sent > 0 {
				cancel()
			}
		},
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Run error %v, want context.Canceled", err)
	}
	if rep.Sent == 0 || rep.Sent >= 1000 {
		t.Errorf("sent %d records before the cancellation, want some but not all", rep.Sent)
	}
}

func TestRunFailsOnAMissingTopic(t *testing.T) {
	client := startBroker(t)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	_, err := orderload.Run(ctx, orderload.Config{Kafka: client, Topic: "ordres", Orders: 1})
	if err == nil || !strings.Contains(err.Error(), "ordres") {
		t.Fatalf("Run error %v, want a failure naming the topic", err)
	}
}
