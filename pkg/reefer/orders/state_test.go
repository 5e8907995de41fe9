package orders_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"github.com/segmentio/kafka-go"

	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/failure"
	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/handoff"
	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/handoff/handofftest"
	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/retrymeta"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/allocation"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/events"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/orders"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/reeferstore"
)

// These tests run the Processor on the real store (SQLite, in a file), as
// both services do: the store is the Allocator's store and the Ledger.

// pipeline is one Processor over a real store and a scripted inventory.
type pipeline struct {
	store *reeferstore.Store
	w     *handofftest.Writer
	p     *orders.Processor

	mu sync.Mutex
	// answer is what the inventory says for (container, order).
	answer func(containerID, orderID string) error
}

func newPipeline(t *testing.T, fleet int) *pipeline {
	t.Helper()
	path := filepath.Join(t.TempDir(), "reefers.db")
	store, err := reeferstore.Open(t.Context(), "sqlite:"+path, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	if err := store.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := store.SeedFleet(t.Context(), fleet); err != nil {
		t.Fatal(err)
	}
	pl := &pipeline{store: store, w: &handofftest.Writer{}, answer: func(string, string) error { return nil }}
	inv := inventoryFunc(func(_ context.Context, containerID, orderID string) error {
		pl.mu.Lock()
		answer := pl.answer
		pl.mu.Unlock()
		return answer(containerID, orderID)
	})
	pl.p = &orders.Processor{
		Allocator: allocation.Service{Store: store, Inventory: inv},
		Router:    newRouter(pl.w),
		Ledger:    store,
	}
	return pl
}

func (pl *pipeline) inventory(answer func(containerID, orderID string) error) {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	pl.answer = answer
}

// written returns the records written so far, by topic.
func (pl *pipeline) written() map[string][]kafka.Message {
	out := map[string][]kafka.Message{}
	for _, call := range pl.w.Calls() {
		for _, m := range call {
			out[m.Topic] = append(out[m.Topic], m)
		}
	}
	return out
}

// last returns the last record written to topic.
func (pl *pipeline) last(t *testing.T, topic string) kafka.Message {
	t.Helper()
	got := pl.written()[topic]
	if len(got) == 0 {
		t.Fatalf("nothing written to %s", topic)
	}
	return got[len(got)-1]
}

// retryRecord is a record of order-retries with attempt failed attempts,
// at offset (each chain's records have their own offsets).
func retryRecord(t *testing.T, orderID string, attempt int, offset int64) (kafka.Message, retrymeta.Meta) {
	t.Helper()
	m := orderRecord(t, orderID)
	meta := retrymeta.Meta{
		Attempt: attempt, DueAt: now, FirstFailureAt: now, LastFailureAt: now,
		ErrorClass: failure.Transient, ErrorMessage: "503",
		OriginalTopic: "orders", OriginalPartition: 3, OriginalOffset: 42, OriginalTimestamp: now,
	}
	m.Topic, m.Partition, m.Offset = "order-retries", 0, offset
	m.Headers = retrymeta.Apply(m.Headers, meta)
	return m, meta
}

var (
	unavailable = failure.NewTransient("http-503", errors.New("unexpected status 503 Service Unavailable"))
	refused     = failure.NewPermanent("http-422", errors.New("unexpected status 422 Unprocessable Entity"))
	conflict    = failure.NewPermanent("http-409", errors.New("unexpected status 409 Conflict"))
)

// Defect 3 of issue 14: a permanent refusal released nothing, and every
// order dead-lettered after its reservation kept its reefer.
func TestDeadLetterReleasesTheReefer(t *testing.T) {
	pl := newPipeline(t, 3)
	pl.inventory(func(string, string) error { return refused })

	d, err := pl.p.Process(t.Context(), orderRecord(t, "O-1"), retrymeta.Meta{})
	if err != nil || d.Route != handoff.RouteDeadLetter {
		t.Fatalf("Process = %+v, %v; want a dead letter", d, err)
	}
	if c, ok, err := pl.store.Allocation(t.Context(), "O-1"); err != nil || ok {
		t.Errorf("the dead-lettered order holds reefer %q (%v), want none", c, err)
	}
	for n := 1; n <= 3; n++ {
		r, err := pl.store.Reefer(t.Context(), reeferstore.SeedReefer(n).ContainerID)
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != reeferstore.StatusFree {
			t.Errorf("reefer %s is %s after the only order was dead-lettered, want free", r.ContainerID, r.Status)
		}
	}
}

// Defect 3 too: an inventory 409 says another order holds the reefer
// there. Redriving the order used to get the same reefer and the same
// 409 forever; now the reefer leaves the pool and the redrive gets another.
func TestConflictQuarantinesTheReeferAndTheRedriveGetsAnother(t *testing.T) {
	pl := newPipeline(t, 3)
	first := reeferstore.SeedReefer(1).ContainerID
	pl.inventory(func(containerID, _ string) error {
		if containerID == first {
			return conflict
		}
		return nil
	})
	d, err := pl.p.Process(t.Context(), orderRecord(t, "O-1"), retrymeta.Meta{})
	if err != nil || d.Route != handoff.RouteDeadLetter {
		t.Fatalf("Process = %+v, %v; want a dead letter", d, err)
	}
	r, err := pl.store.Reefer(t.Context(), first)
	if err != nil {
		t.Fatal(err)
	}
	if r.Status == reeferstore.StatusFree || r.OrderID == "O-1" {
		t.Errorf("reefer %s after the 409 = %+v, want it out of the pool", first, r)
	}

	// dlq redrive --to original: the record on orders with the count.
	dead := pl.last(t, "order-dead-letter")
	redriven := redrivenRecord(t, dead, "orders", 7)
	prev, err := retrymeta.FirstAttempt(redriven.Headers)
	if err != nil {
		t.Fatal(err)
	}
	d, err = pl.p.Process(t.Context(), redriven, prev)
	if err != nil || d.Route != handoff.RouteAllocated {
		t.Fatalf("redriven Process = %+v, %v; want allocated", d, err)
	}
	if d.ContainerID == first {
		t.Errorf("the redrive got the refused reefer %s again", first)
	}
}

// redrivenRecord is what dlq redrive writes for a dead letter: to
// order-retries (attempts reset, due now) or to orders (a fresh record),
// with x-dlq-redrive-count one higher.
func redrivenRecord(t *testing.T, dead kafka.Message, topic string, offset int64) kafka.Message {
	t.Helper()
	meta, err := retrymeta.Parse(dead.Headers)
	if err != nil {
		t.Fatal(err)
	}
	next := retrymeta.Meta{
		OriginalTopic: meta.OriginalTopic, OriginalPartition: meta.OriginalPartition,
		OriginalOffset: meta.OriginalOffset, OriginalTimestamp: meta.OriginalTimestamp,
		RedriveCount: meta.RedriveCount + 1,
	}
	if topic == "order-retries" {
		next.DueAt = now
	}
	return kafka.Message{Topic: topic, Partition: 0, Offset: offset, Key: dead.Key, Value: dead.Value,
		Headers: retrymeta.Apply(dead.Headers, next)}
}

// Defect 1 of issue 14, both doors: a redriven order whose first attempt
// after the redrive fails transiently must still run on and conclude,
// with the redrive count carried through every hop.
func TestRedriveThroughEitherDoorRunsTheOrderAgain(t *testing.T) {
	for _, door := range []string{"orders", "order-retries"} {
		t.Run(door, func(t *testing.T) {
			pl := newPipeline(t, 3)
			pl.inventory(func(string, string) error { return refused })
			if d, err := pl.p.Process(t.Context(), orderRecord(t, "O-1"), retrymeta.Meta{}); err != nil || d.Route != handoff.RouteDeadLetter {
				t.Fatalf("Process = %+v, %v; want a dead letter", d, err)
			}

			// The redrive, while the inventory still fails transiently once.
			pl.inventory(func(string, string) error { return unavailable })
			redriven := redrivenRecord(t, pl.last(t, "order-dead-letter"), door, 100)
			var prev retrymeta.Meta
			var err error
			if door == "orders" {
				prev, err = retrymeta.FirstAttempt(redriven.Headers) // as reefer-manager reads it
			} else {
				prev, err = retrymeta.ParseRetry(redriven.Headers) // as order-retry reads it
			}
			if err != nil {
				t.Fatal(err)
			}
			d, err := pl.p.Process(t.Context(), redriven, prev)
			if err != nil || d.Route != handoff.RouteRetry {
				t.Fatalf("first attempt after the redrive = %+v, %v; want a retry", d, err)
			}
			retry := pl.last(t, "order-retries")
			if got, _ := retrymeta.Get(retry.Headers, retrymeta.HeaderRedriveCount); got != "1" {
				t.Errorf("x-dlq-redrive-count on the retry record = %q, want 1 (the loop guard)", got)
			}

			// order-retry runs the next attempt, the inventory is back.
			pl.inventory(func(string, string) error { return nil })
			prev, err = retrymeta.ParseRetry(retry.Headers)
			if err != nil {
				t.Fatal(err)
			}
			retry.Offset = 101
			d, err = pl.p.Process(t.Context(), retry, prev)
			if err != nil || d.Route != handoff.RouteAllocated || d.Concluded != "" {
				t.Fatalf("retry after the redrive = %+v, %v; want allocated", d, err)
			}
		})
	}
}

// Defect 4 of issue 14: two chains of one order (a rebalance re-ran a
// waiting record whose next attempt was already published) race: one
// fails its last attempt while the other allocates. Whatever the
// interleaving, the order ends in one place: allocated, or dead-lettered
// once holding no reefer. Many orders, each pair released together.
func TestTwoChainsOfOneOrderConcludeOnce(t *testing.T) {
	const orders = 40
	pl := newPipeline(t, orders+5)
	// Chain A's inventory call fails, chain B's succeeds: the inventory
	// answers by the attempt the record carries.
	failing := map[string]bool{}
	var mu sync.Mutex
	pl.inventory(func(_, orderID string) error {
		mu.Lock()
		defer mu.Unlock()
		if failing[orderID] {
			failing[orderID] = false // the next call (the other chain) succeeds
			return unavailable
		}
		failing[orderID] = true
		return nil
	})
	for i := range orders {
		id := fmt.Sprintf("O-%02d", i)
		last, lastMeta := retryRecord(t, id, 4, int64(2*i)) // its failure is the 5th: max-attempts
		dup, dupMeta := retryRecord(t, id, 4, int64(2*i+1))
		var errs [2]error
		start := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() { <-start; _, errs[0] = pl.p.Process(t.Context(), last, lastMeta) })
		wg.Go(func() { <-start; _, errs[1] = pl.p.Process(t.Context(), dup, dupMeta) })
		close(start)
		wg.Wait()
		if err := errors.Join(errs[:]...); err != nil {
			t.Fatalf("%s: %v", id, err)
		}
	}

	written := pl.written()
	allocated, dead := map[string]int{}, map[string]int{}
	for _, m := range written["orders"] {
		env, err := events.Decode(m.Value)
		if err == nil && env.Type == events.TypeContainerAllocated {
			allocated[string(m.Key)]++
		}
	}
	for _, m := range written["order-dead-letter"] {
		dead[string(m.Key)]++
	}
	for i := range orders {
		id := fmt.Sprintf("O-%02d", i)
		switch {
		case allocated[id] > 0 && dead[id] > 0:
			t.Errorf("%s is both allocated and dead-lettered", id)
		case dead[id] > 1:
			t.Errorf("%s is dead-lettered %d times", id, dead[id])
		case allocated[id] == 0 && dead[id] == 0:
			t.Errorf("%s has no conclusion", id)
		}
		c, holds, err := pl.store.Allocation(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		if dead[id] > 0 && holds {
			t.Errorf("dead-lettered %s holds reefer %s", id, c)
		}
	}
	t.Logf("%d orders: %d allocated, %d dead-lettered", orders, len(allocated), len(dead))
}

// A crash between the dead-letter claim and the write: the same record,
// processed again, writes the dead letter instead of skipping it.
func TestClaimedDeadLetterIsWrittenAgainByItsOwnRecord(t *testing.T) {
	pl := newPipeline(t, 3)
	pl.inventory(func(string, string) error { return refused })
	pl.w.SetErr(errors.New("broker unavailable")) // the claim holds, the write fails
	rec := orderRecord(t, "O-1")
	if _, err := pl.p.Process(t.Context(), rec, retrymeta.Meta{}); err == nil {
		t.Fatal("Process succeeded with a failing writer")
	}
	pl.w.SetErr(nil)
	pl.inventory(func(string, string) error { return nil }) // would allocate, if asked
	d, err := pl.p.Process(t.Context(), rec, retrymeta.Meta{})
	if err != nil || d.Route != handoff.RouteDeadLetter || d.Reason != retrymeta.PermanentError {
		t.Fatalf("Process again = %+v, %v; want the dead letter written", d, err)
	}
	if n := len(pl.written()["order-dead-letter"]); n != 1 {
		t.Errorf("%d dead letters, want 1", n)
	}
	// Another chain's record of the order is skipped.
	other, meta := retryRecord(t, "O-1", 1, 9)
	d, err = pl.p.Process(t.Context(), other, meta)
	if err != nil || d.Route != handoff.RouteSkipped || d.Concluded != allocation.StateDeadLettered {
		t.Fatalf("other chain = %+v, %v; want skipped", d, err)
	}
	if got := strconv.Itoa(len(pl.written()["order-dead-letter"])); got != "1" {
		t.Errorf("%s dead letters after the other chain, want 1", got)
	}
}

// A record the retry topic refuses for its size is dead-lettered as
// oversize by the router instead of retried; the order must then be
// concluded dead-lettered too, its reefer released, or the reservation
// made before the failed inventory call would be held for good.
func TestOversizeRetryConcludesTheOrderAndReleasesItsReefer(t *testing.T) {
	pl := newPipeline(t, 3)
	pl.p.Router.MaxMessageBytes = map[string]int{"order-retries": 16 << 10}
	pl.inventory(func(string, string) error { return unavailable })

	padding := kafka.Header{Key: "x-padding", Value: make([]byte, 20<<10)}
	d, err := pl.p.Process(t.Context(), orderRecord(t, "O-1", padding), retrymeta.Meta{})
	if err != nil || d.Route != handoff.RouteDeadLetter || d.Reason != retrymeta.Oversize {
		t.Fatalf("Process = %+v, %v; want an oversize dead letter", d, err)
	}
	if got := len(pl.written()["order-retries"]); got != 0 {
		t.Errorf("%d records written to order-retries, want none", got)
	}
	o, ok, err := pl.store.Order(t.Context(), "O-1")
	if err != nil || !ok || o.State != allocation.StateDeadLettered {
		t.Errorf("order state = %+v (ok %v, err %v), want dead-lettered", o, ok, err)
	}
	for n := 1; n <= 3; n++ {
		r, err := pl.store.Reefer(t.Context(), reeferstore.SeedReefer(n).ContainerID)
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != reeferstore.StatusFree {
			t.Errorf("reefer %s is %s after the order was dead-lettered as oversize, want free", r.ContainerID, r.Status)
		}
	}
}
