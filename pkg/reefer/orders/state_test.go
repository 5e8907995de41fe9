package orders_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

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
	// release is what it says to a release; nil: released.
	release  func(containerID, orderID string) error
	released []allocation.Reservation
}

// Release is the scripted inventory's release.
func (pl *pipeline) Release(_ context.Context, containerID, orderID string) error {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	if pl.release != nil {
		if err := pl.release(containerID, orderID); err != nil {
			return err
		}
	}
	pl.released = append(pl.released, allocation.Reservation{OrderID: orderID, ContainerID: containerID})
	return nil
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
		Releaser:  allocation.Releaser{Store: store, Inventory: pl, Log: slog.New(slog.DiscardHandler)},
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

// Found by the fault campaign (seed 1): order-retry's committed offset
// lags behind its waiting records, so a rebalance re-reads the record
// that claimed a dead letter and already wrote it. Read again, it must
// write nothing: a second copy was a second dead letter for a person,
// and when the first had been redriven meanwhile (the redriven record
// still waiting for its due time), the copy carried the old redrive
// count and outlived the redrive, which allocated the order.
func TestClaimingRecordReadAgainWritesNoSecondDeadLetter(t *testing.T) {
	pl := newPipeline(t, 3)
	pl.inventory(func(string, string) error { return unavailable })
	last, meta := retryRecord(t, "O-1", pl.p.Router.MaxAttempts-1, 7)
	d, err := pl.p.Process(t.Context(), last, meta)
	if err != nil || d.Route != handoff.RouteDeadLetter || d.Reason != retrymeta.MaxAttempts {
		t.Fatalf("last attempt = %+v, %v; want a max-attempts dead letter", d, err)
	}
	dead := pl.last(t, "order-dead-letter")

	// The rebalance: the same record again, before and after the redrive
	// was written (its record not yet due, so the order is not reopened).
	redriven := redrivenRecord(t, dead, "order-retries", 100)
	for _, when := range []string{"before the redrive", "after the redrive"} {
		d, err = pl.p.Process(t.Context(), last, meta)
		if err != nil || d.Route != handoff.RouteSkipped || d.Concluded != allocation.StateDeadLettered {
			t.Fatalf("the claiming record read again %s = %+v, %v; want skipped", when, d, err)
		}
		if n := len(pl.written()["order-dead-letter"]); n != 1 {
			t.Fatalf("%d dead letters after the record was read again %s, want 1", n, when)
		}
	}

	// The redrive runs and allocates; nothing of the old chain is left.
	pl.inventory(func(string, string) error { return nil })
	prev, err := retrymeta.ParseRetry(redriven.Headers)
	if err != nil {
		t.Fatal(err)
	}
	if d, err := pl.p.Process(t.Context(), redriven, prev); err != nil || d.Route != handoff.RouteAllocated {
		t.Fatalf("redriven record = %+v, %v; want allocated", d, err)
	}
	if d, err := pl.p.Process(t.Context(), last, meta); err != nil || d.Route != handoff.RouteAllocated || d.ContainerID != "C-0001" {
		t.Fatalf("the old record read again after the redrive allocated = %+v, %v; want the success events again", d, err)
	}
	if n := len(pl.written()["order-dead-letter"]); n != 1 {
		t.Errorf("%d dead letters at the end, want 1 (the redriven one)", n)
	}
}

// gatedWriter holds the first write to topic until open is closed, and
// says on entered when a write to topic arrives.
type gatedWriter struct {
	*handofftest.Writer
	topic   string
	open    chan struct{}
	entered chan struct{}
	once    sync.Once
}

func (w *gatedWriter) WriteMessages(ctx context.Context, msgs ...kafka.Message) error {
	if len(msgs) > 0 && msgs[0].Topic == w.topic {
		w.entered <- struct{}{}
		first := false
		w.once.Do(func() { first = true })
		if first {
			<-w.open
		}
	}
	return w.Writer.WriteMessages(ctx, msgs...)
}

// Found by the fault campaign (seed 1, three copies of one dead letter
// within 5 ms): a rebalance re-reads records still waiting for their due
// time, so two deliveries of one record come due together in one
// process. Side by side, both found the claim theirs and both wrote.
func TestTwoDeliveriesOfOneRecordAtOnceWriteOneDeadLetter(t *testing.T) {
	pl := newPipeline(t, 3)
	pl.inventory(func(string, string) error { return refused })
	w := &gatedWriter{Writer: pl.w, topic: "order-dead-letter",
		open: make(chan struct{}), entered: make(chan struct{}, 4)}
	pl.p.Router.Writer = w
	rec := orderRecord(t, "O-1")

	type result struct {
		d   orders.Decision
		err error
	}
	results := make(chan result, 2)
	deliver := func() {
		d, err := pl.p.Process(t.Context(), rec, retrymeta.Meta{})
		results <- result{d, err}
	}
	go deliver()
	<-w.entered // the first delivery claimed and is writing
	go deliver()
	// A second delivery that runs side by side reaches the writer too;
	// one that waits for the first does not. Either way, open the gate.
	select {
	case <-w.entered:
	case <-time.After(500 * time.Millisecond):
	}
	close(w.open)
	routes := map[handoff.Route]int{}
	for range 2 {
		r := <-results
		if r.err != nil {
			t.Fatalf("Process = %+v, %v", r.d, r.err)
		}
		routes[r.d.Route]++
	}
	if n := len(pl.written()["order-dead-letter"]); n != 1 {
		t.Errorf("%d dead letters from two deliveries of one record, want 1 (routes %v)", n, routes)
	}
}

// A delivery of the same record in another process (after a rebalance
// the partition's new owner re-reads it) must not write the dead letter
// while the claiming process may still be writing it, and must write it
// once the claim's lease is over: that process died before its write.
func TestAnotherProcessTakesAClaimOverOnlyAfterItsLease(t *testing.T) {
	pl := newPipeline(t, 3)
	pl.inventory(func(string, string) error { return refused })
	pl.w.SetErr(errors.New("broker unavailable")) // the first process claims, its write fails, it dies
	rec := orderRecord(t, "O-1")
	if _, err := pl.p.Process(t.Context(), rec, retrymeta.Meta{}); err == nil {
		t.Fatal("Process succeeded with a failing writer")
	}
	pl.w.SetErr(nil)

	clock := time.Now()
	router := newRouter(pl.w)
	router.Now = func() time.Time { return clock }
	other := &orders.Processor{
		Allocator: allocation.Service{Store: pl.store, Inventory: inventoryFunc(func(context.Context, string, string) error { return refused })},
		Router:    router,
		Ledger:    pl.store,
	}
	if d, err := other.Process(t.Context(), rec, retrymeta.Meta{}); !errors.Is(err, orders.ErrClaimInProgress) {
		t.Fatalf("another process within the lease = %+v, %v; want ErrClaimInProgress", d, err)
	}
	if n := len(pl.written()["order-dead-letter"]); n != 0 {
		t.Fatalf("%d dead letters written within the lease, want 0", n)
	}
	clock = clock.Add(orders.DefaultClaimLease + time.Second)
	d, err := other.Process(t.Context(), rec, retrymeta.Meta{})
	if err != nil || d.Route != handoff.RouteDeadLetter {
		t.Fatalf("another process after the lease = %+v, %v; want the dead letter written", d, err)
	}
	if d, err := other.Process(t.Context(), rec, retrymeta.Meta{}); err != nil || d.Route != handoff.RouteSkipped {
		t.Fatalf("read again once written = %+v, %v; want skipped", d, err)
	}
	if n := len(pl.written()["order-dead-letter"]); n != 1 {
		t.Errorf("%d dead letters, want 1", n)
	}
}

// Found by the fault campaign (seed 3: the inventory held two containers
// for one order). A reefer whose inventory call failed may still be
// recorded there (a timeout after the inventory did it, a duplicate
// chain's call that succeeded). The dead letter gives it back to the
// pool only after the inventory released it; a redrive waits for that
// release, so the order never gets a second reefer while the inventory
// may hold the first.
func TestAReeferGoesBackOnlyAfterTheInventoryReleasedIt(t *testing.T) {
	pl := newPipeline(t, 3)
	inventoryDown := failure.NewTransient("circuit-open", errors.New("circuit breaker is open"))
	inventoryDown.RetryAfter = 30 * time.Second
	pl.inventory(func(string, string) error { return refused })
	pl.mu.Lock()
	pl.release = func(string, string) error { return inventoryDown }
	pl.mu.Unlock()

	d, err := pl.p.Process(t.Context(), orderRecord(t, "O-1"), retrymeta.Meta{})
	if err != nil || d.Route != handoff.RouteDeadLetter || d.Released != "C-0001" {
		t.Fatalf("Process = %+v, %v; want a dead letter releasing C-0001", d, err)
	}
	if r, _ := pl.store.Reefer(t.Context(), "C-0001"); r.Status != reeferstore.StatusAllocated || r.OrderID != "O-1" {
		t.Errorf("C-0001 = %+v while the inventory cannot release it, want held for O-1", r)
	}

	// The redrive while the inventory still cannot release: a retry, not
	// a second reefer.
	pl.inventory(func(string, string) error { return nil })
	redriven := redrivenRecord(t, pl.last(t, "order-dead-letter"), "order-retries", 100)
	prev, err := retrymeta.ParseRetry(redriven.Headers)
	if err != nil {
		t.Fatal(err)
	}
	d, err = pl.p.Process(t.Context(), redriven, prev)
	if err != nil || d.Route != handoff.RouteRetry || failure.ReasonOf(d.Err) != "circuit-open" || !strings.Contains(d.Err.Error(), "earlier reefer is not released") {
		t.Fatalf("redrive before the release = %+v, %v; want a retry, for the release's failure", d, err)
	}
	// The release's Retry-After paces the retry: an open breaker does not
	// burn the redriven order's attempts in a few quick retries.
	if d.Delay < 30*time.Second {
		t.Errorf("retry delay %s, want at least the release's Retry-After (30s)", d.Delay)
	}
	retry := pl.last(t, "order-retries")
	if got, _ := retrymeta.Get(retry.Headers, retrymeta.HeaderRedriveCount); got != "1" {
		t.Errorf("x-dlq-redrive-count of the retry = %q, want 1", got)
	}

	// The inventory answers again: the next attempt releases C-0001
	// there, then reopens and allocates.
	pl.mu.Lock()
	pl.release = nil
	pl.mu.Unlock()
	prev, err = retrymeta.ParseRetry(retry.Headers)
	if err != nil {
		t.Fatal(err)
	}
	retry.Offset = 101
	d, err = pl.p.Process(t.Context(), retry, prev)
	if err != nil || d.Route != handoff.RouteAllocated {
		t.Fatalf("retry after the inventory came back = %+v, %v; want allocated", d, err)
	}
	pl.mu.Lock()
	released := slices.Clone(pl.released)
	pl.mu.Unlock()
	if want := []allocation.Reservation{{OrderID: "O-1", ContainerID: "C-0001"}}; !slices.Equal(released, want) {
		t.Errorf("inventory releases = %v, want %v", released, want)
	}
	if held, err := pl.store.HeldByUnallocated(t.Context()); err != nil || len(held) != 0 {
		t.Errorf("HeldByUnallocated = %v, %v; want none", held, err)
	}
}

// A chain whose inventory call succeeded after another chain
// dead-lettered the order (its mark is lost) releases that reefer in the
// inventory: the inventory recorded it for an order that holds nothing.
func TestALostMarkReleasesTheReeferInTheInventory(t *testing.T) {
	pl := newPipeline(t, 3)
	entered, proceed := make(chan struct{}), make(chan struct{})
	pl.inventory(func(string, string) error {
		close(entered)
		<-proceed // the call is in flight while the other chain concludes
		return nil
	})
	slow := make(chan error, 1)
	go func() {
		_, err := pl.p.Process(t.Context(), orderRecord(t, "O-1"), retrymeta.Meta{})
		slow <- err
	}()
	<-entered
	last, meta := retryRecord(t, "O-1", pl.p.Router.MaxAttempts-1, 7)
	pl.mu.Lock()
	pl.answer = func(string, string) error { return unavailable }
	pl.mu.Unlock()
	if d, err := pl.p.Process(t.Context(), last, meta); err != nil || d.Route != handoff.RouteDeadLetter {
		t.Fatalf("other chain's last attempt = %+v, %v; want a dead letter", d, err)
	}
	close(proceed)
	if err := <-slow; err != nil {
		t.Fatal(err)
	}
	pl.mu.Lock()
	released := slices.Clone(pl.released)
	pl.mu.Unlock()
	// Released twice: after the dead letter, and after the lost mark (the
	// inventory recorded it in between).
	if want := (allocation.Reservation{OrderID: "O-1", ContainerID: "C-0001"}); len(released) != 2 || released[1] != want {
		t.Errorf("inventory releases = %v, want two of %v", released, want)
	}
	if r, _ := pl.store.Reefer(t.Context(), "C-0001"); r.Status != reeferstore.StatusFree {
		t.Errorf("C-0001 = %+v, want free", r)
	}
}

// An inventory that refuses a release for good (the demo's refused
// orders: every call about them answers 422) leaves the reefer's state
// unknown: quarantined for a person, not handed to the next order. Found
// by the 20,000-order campaign: the inventory held such a reefer for its
// order while a redrive gave the order a second one. The refusal now
// blocks the redrive (a paced retry) until the inventory releases the
// reefer, which every sweep asks for; then it is back in the pool and the
// redrive runs.
func TestAReleaseTheInventoryRefusesQuarantinesTheReefer(t *testing.T) {
	pl := newPipeline(t, 3)
	pl.inventory(func(string, string) error { return refused })
	pl.mu.Lock()
	pl.release = func(string, string) error { return refused }
	pl.mu.Unlock()
	if d, err := pl.p.Process(t.Context(), orderRecord(t, "O-1"), retrymeta.Meta{}); err != nil || d.Route != handoff.RouteDeadLetter {
		t.Fatalf("Process = %+v, %v; want a dead letter", d, err)
	}
	r, err := pl.store.Reefer(t.Context(), "C-0001")
	if err != nil || r.Status != reeferstore.StatusQuarantined || !strings.Contains(r.QuarantineReason, "refused to release it from order O-1") {
		t.Errorf("C-0001 = %+v, %v; want quarantined, the inventory's refusal as the reason", r, err)
	}
	if p, err := pl.store.PendingReleases(t.Context(), "", 10); err != nil || len(p) != 0 {
		t.Errorf("PendingReleases = %v, %v; want none", p, err)
	}

	// A redrive while the inventory still refuses: a retry, not a
	// second reefer.
	pl.inventory(func(string, string) error { return nil })
	redriven := redrivenRecord(t, pl.last(t, "order-dead-letter"), "orders", 100)
	prev, err := retrymeta.FirstAttempt(redriven.Headers)
	if err != nil {
		t.Fatal(err)
	}
	d, err := pl.p.Process(t.Context(), redriven, prev)
	if err != nil || d.Route != handoff.RouteRetry || !strings.Contains(d.Err.Error(), "refuses to release") {
		t.Fatalf("redrive while the release is refused = %+v, %v; want a retry naming the refusal", d, err)
	}
	if got, ok, _ := pl.store.Allocation(t.Context(), "O-1"); ok {
		t.Errorf("the redriven order holds %s while the inventory may still hold C-0001 for it", got)
	}

	// The inventory accepts the release now: the sweep frees the reefer.
	pl.mu.Lock()
	pl.release = nil
	pl.mu.Unlock()
	if _, err := pl.releaser().Sweep(t.Context(), 10); err != nil {
		t.Fatal(err)
	}
	if err := pl.releaser().ReleaseOrder(t.Context(), "O-1"); err != nil {
		t.Fatalf("ReleaseOrder after the inventory accepted = %v", err)
	}
	if r, _ := pl.store.Reefer(t.Context(), "C-0001"); r.Status != reeferstore.StatusFree {
		t.Errorf("C-0001 = %+v after the inventory released it, want free", r)
	}
	retry := pl.last(t, "order-retries")
	prev, err = retrymeta.ParseRetry(retry.Headers)
	if err != nil {
		t.Fatal(err)
	}
	retry.Offset = 101
	if d, err := pl.p.Process(t.Context(), retry, prev); err != nil || d.Route != handoff.RouteAllocated {
		t.Fatalf("the redrive's retry = %+v, %v; want allocated", d, err)
	}
}

// Found by the 20,000-order campaign: a process claimed an order's dead
// letter and died before writing it; the next delivery of its record
// failed earlier (the database was restarting) and went to the retry
// topic, so the claiming record never came back, and the retry chain,
// finding another record's claim, was skipped. The order was
// dead-lettered in the database and nowhere else. Past the lease,
// another chain of the same generation takes the claim over and writes.
func TestAnOrphanedClaimIsTakenOverByAnotherChain(t *testing.T) {
	pl := newPipeline(t, 3)
	pl.inventory(func(string, string) error { return refused })
	pl.w.SetErr(errors.New("broker unavailable")) // the claiming process dies before its write
	dying := &orders.Processor{Allocator: pl.p.Allocator, Router: pl.p.Router, Ledger: pl.store, Releaser: pl.p.Releaser}
	if _, err := dying.Process(t.Context(), orderRecord(t, "O-1"), retrymeta.Meta{}); err == nil {
		t.Fatal("Process succeeded with a failing writer")
	}
	pl.w.SetErr(nil)

	clock := time.Now()
	pl.p.Router.Now = func() time.Time { return clock }
	retry, meta := retryRecord(t, "O-1", 1, 50)
	if d, err := pl.p.Process(t.Context(), retry, meta); !errors.Is(err, orders.ErrClaimInProgress) {
		t.Fatalf("another chain within the lease = %+v, %v; want ErrClaimInProgress", d, err)
	}
	clock = clock.Add(orders.DefaultClaimLease + time.Second)
	d, err := pl.p.Process(t.Context(), retry, meta)
	if err != nil || d.Route != handoff.RouteDeadLetter {
		t.Fatalf("another chain after the lease = %+v, %v; want the dead letter written", d, err)
	}
	if n := len(pl.written()["order-dead-letter"]); n != 1 {
		t.Errorf("%d dead letters, want 1", n)
	}
	// Written and marked: the claiming record, if it ever comes back,
	// writes nothing.
	if d, err := dying.Process(t.Context(), orderRecord(t, "O-1"), retrymeta.Meta{}); err != nil || d.Route != handoff.RouteSkipped {
		t.Errorf("the first claimer's record again = %+v, %v; want skipped", d, err)
	}
	if n := len(pl.written()["order-dead-letter"]); n != 1 {
		t.Errorf("%d dead letters at the end, want 1", n)
	}
}

// releaser is the Processor's Releaser.
func (pl *pipeline) releaser() allocation.Releaser { return pl.p.Releaser.(allocation.Releaser) }

// heldInventory makes pl's scripted inventory keep its records: which
// order holds which container. answer runs before a call is recorded; a
// nil answer records it.
func heldInventory(pl *pipeline) (holds func() map[string]string, record func(containerID, orderID string)) {
	held := map[string]string{}
	pl.mu.Lock()
	pl.release = func(containerID, orderID string) error {
		if held[containerID] == orderID {
			delete(held, containerID)
		}
		return nil
	}
	pl.mu.Unlock()
	holds = func() map[string]string {
		pl.mu.Lock()
		defer pl.mu.Unlock()
		return maps.Clone(held)
	}
	record = func(containerID, orderID string) {
		pl.mu.Lock()
		defer pl.mu.Unlock()
		held[containerID] = orderID
	}
	return holds, record
}

// Found by the 20,000-order campaign: an allocation call of one chain was
// in flight when another chain dead-lettered the order and released its
// reefer; the call landed after the release, and the process that made
// it was killed before it could record the answer. Its record, read
// again, met a dead-lettered order and was skipped, and the inventory
// held the reefer for an order holding nothing (a redrive later gave the
// order a second one there). The release is done once more when it is
// RecheckAfter old, which catches the late call.
func TestAnAllocationCallThatLandsAfterTheReleaseIsReleasedAgain(t *testing.T) {
	pl := newPipeline(t, 3)
	holds, record := heldInventory(pl)
	entered, proceed := make(chan struct{}), make(chan struct{})
	killed, kill := context.WithCancel(t.Context())
	pl.inventory(func(containerID, orderID string) error {
		close(entered)
		<-proceed
		record(containerID, orderID) // the call lands, after the release...
		kill()                       // ...and its process dies before it hears the answer
		return killed.Err()
	})
	first := orderRecord(t, "O-1")
	dying := make(chan error, 1)
	go func() {
		_, err := pl.p.Process(killed, first, retrymeta.Meta{})
		dying <- err
	}()
	<-entered

	// Meanwhile another chain of the order fails its last attempt: a dead
	// letter, and the reefer released in the inventory (which does not
	// hold it yet) and in the database.
	last, meta := retryRecord(t, "O-1", pl.p.Router.MaxAttempts-1, 7)
	pl.mu.Lock()
	pl.answer = func(string, string) error { return unavailable }
	pl.mu.Unlock()
	if d, err := pl.p.Process(t.Context(), last, meta); err != nil || d.Route != handoff.RouteDeadLetter || d.Released != "C-0001" {
		t.Fatalf("other chain's last attempt = %+v, %v; want a dead letter releasing C-0001", d, err)
	}
	close(proceed)
	if err := <-dying; !errors.Is(err, orders.ErrInterrupted) {
		t.Fatalf("the killed chain's Process = %v, want ErrInterrupted", err)
	}
	// After the restart its record is read again, and skipped: the order
	// is dead-lettered.
	if d, err := pl.p.Process(t.Context(), first, retrymeta.Meta{}); err != nil || d.Route != handoff.RouteSkipped {
		t.Fatalf("the record read again = %+v, %v; want skipped", d, err)
	}
	if got := holds(); got["C-0001"] != "O-1" {
		t.Fatalf("inventory = %v; the late call should hold C-0001 for O-1 here (the test's premise)", got)
	}
	if r, _ := pl.store.Reefer(t.Context(), "C-0001"); r.Status != reeferstore.StatusFree {
		t.Fatalf("C-0001 = %+v, want free in the database", r)
	}

	n, err := pl.releaser().Recheck(t.Context(), 10)
	if err != nil || n != 1 {
		t.Fatalf("Recheck = %d, %v; want 1 release rechecked", n, err)
	}
	if got := holds(); len(got) != 0 {
		t.Errorf("inventory after the recheck = %v, want nothing held", got)
	}
	if c, err := pl.store.CountRechecks(t.Context()); err != nil || c != 0 {
		t.Errorf("CountRechecks = %d, %v; want 0", c, err)
	}
}

// A recheck must not erase a true record: the order, redriven, got the
// same reefer again before its release was rechecked.
func TestARecheckLeavesAReeferTheOrderHoldsAgain(t *testing.T) {
	pl := newPipeline(t, 1)
	holds, record := heldInventory(pl)
	pl.inventory(func(string, string) error { return refused })
	if d, err := pl.p.Process(t.Context(), orderRecord(t, "O-1"), retrymeta.Meta{}); err != nil || d.Route != handoff.RouteDeadLetter || d.Released != "C-0001" {
		t.Fatalf("Process = %+v, %v; want a dead letter releasing C-0001", d, err)
	}
	pl.inventory(func(containerID, orderID string) error { record(containerID, orderID); return nil })
	redriven := redrivenRecord(t, pl.last(t, "order-dead-letter"), "orders", 100)
	prev, err := retrymeta.FirstAttempt(redriven.Headers)
	if err != nil {
		t.Fatal(err)
	}
	if d, err := pl.p.Process(t.Context(), redriven, prev); err != nil || d.Route != handoff.RouteAllocated || d.ContainerID != "C-0001" {
		t.Fatalf("redrive = %+v, %v; want allocated to C-0001 (the fleet's one reefer)", d, err)
	}
	pl.mu.Lock()
	releases := len(pl.released)
	pl.mu.Unlock()

	if n, err := pl.releaser().Recheck(t.Context(), 10); err != nil || n != 1 {
		t.Fatalf("Recheck = %d, %v; want 1 release rechecked", n, err)
	}
	pl.mu.Lock()
	after := len(pl.released)
	pl.mu.Unlock()
	if after != releases {
		t.Errorf("the recheck called the inventory's release (%d calls, was %d) for a reefer the order holds again", after, releases)
	}
	if got := holds(); got["C-0001"] != "O-1" {
		t.Errorf("inventory = %v, want C-0001 still held by O-1", got)
	}
}

// A recheck the inventory cannot do now waits for the next sweep; one it
// refuses for good becomes a refused release: the inventory may hold the
// reefer for the order, so the order is not reopened until it releases it.
func TestARecheckWaitsForTheInventoryAndEndsOnARefusal(t *testing.T) {
	pl := newPipeline(t, 3)
	pl.inventory(func(string, string) error { return refused })
	if d, err := pl.p.Process(t.Context(), orderRecord(t, "O-1"), retrymeta.Meta{}); err != nil || d.Released != "C-0001" {
		t.Fatalf("Process = %+v, %v; want a dead letter releasing C-0001", d, err)
	}
	r := pl.releaser()
	r.RecheckAfter = time.Hour
	if n, err := r.Recheck(t.Context(), 10); err != nil || n != 0 {
		t.Errorf("Recheck an hour early = %d, %v; want nothing due", n, err)
	}
	pl.mu.Lock()
	pl.release = func(string, string) error { return unavailable }
	pl.mu.Unlock()
	if n, err := pl.releaser().Recheck(t.Context(), 10); err == nil || n != 0 {
		t.Errorf("Recheck with the inventory down = %d, %v; want an error and nothing rechecked", n, err)
	}
	if c, _ := pl.store.CountRechecks(t.Context()); c != 1 {
		t.Errorf("CountRechecks = %d, want the recheck kept for the next sweep", c)
	}
	pl.mu.Lock()
	pl.release = func(string, string) error { return refused }
	pl.mu.Unlock()
	if n, err := pl.releaser().Recheck(t.Context(), 10); err != nil || n != 1 {
		t.Errorf("Recheck answered 422 = %d, %v; want it done", n, err)
	}
	if c, _ := pl.store.CountRechecks(t.Context()); c != 0 {
		t.Errorf("CountRechecks = %d, want 0", c)
	}
	want := []allocation.Reservation{{OrderID: "O-1", ContainerID: "C-0001"}}
	if got, err := pl.store.RefusedReleases(t.Context(), "", 10); err != nil || !slices.Equal(got, want) {
		t.Errorf("RefusedReleases = %v, %v; want %v", got, err, want)
	}
	if _, err := pl.store.Reopen(t.Context(), "O-1", 1); !errors.Is(err, allocation.ErrReleasePending) {
		t.Errorf("Reopen while the inventory refuses = %v, want ErrReleasePending", err)
	}
}
