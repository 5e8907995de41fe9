package manager_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/failure"
	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/retrymeta"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/events"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/reeferstore"
	"github.com/reeferdlq/reefer-dlq/pkg/testkit/pgtest"
)

// TestHealthyInventoryAllocatesEveryOrderExactlyOnce runs the happy path
// against both stores: each order gets one reefer and both events, once
// duplicates are dropped by event id, even when the same order arrives
// twice.
func TestHealthyInventoryAllocatesEveryOrderExactlyOnce(t *testing.T) {
	stores := []struct {
		name string
		url  func(t *testing.T) string
	}{
		{"sqlite", func(*testing.T) string { return "" }}, // the env's default
		{"postgres", func(t *testing.T) string { return pgtest.Start(t) }},
	}
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			e := newEnv(t)
			extra := map[string]string{}
			if url := st.url(t); url != "" {
				extra["DATABASE_URL"] = url
			}
			cfg := e.config(extra)
			svc := e.start(cfg)

			const n = 40
			msgs := orders(t, "O", n)
			// The same order twice, as a producer retry would do it.
			msgs = append(msgs, msgs[0])
			e.produce(msgs...)
			e.waitAllCommitted(3 * time.Minute)

			allocated, _ := e.eventsOf("orders", events.TypeContainerAllocated)
			assigned, _ := e.eventsOf("containers", events.TypeContainerAssignedToOrder)
			if len(allocated) != n || len(assigned) != n {
				t.Fatalf("%d ContainerAllocated and %d ContainerAssignedToOrder after dropping duplicates, want %d each", len(allocated), len(assigned), n)
			}
			containerOf := map[string]string{}
			for _, ev := range allocated {
				data, err := events.DecodeData[events.ContainerAllocated](ev.env)
				if err != nil {
					t.Fatal(err)
				}
				if string(ev.msg.Key) != data.OrderID {
					t.Errorf("ContainerAllocated key %q, want the order id %q", ev.msg.Key, data.OrderID)
				}
				containerOf[data.OrderID] = data.ContainerID
			}
			reefers := map[string]bool{}
			for _, ev := range assigned {
				data, err := events.DecodeData[events.ContainerAssignedToOrder](ev.env)
				if err != nil {
					t.Fatal(err)
				}
				if string(ev.msg.Key) != data.ContainerID || containerOf[data.OrderID] != data.ContainerID {
					t.Errorf("ContainerAssignedToOrder %+v keyed %q disagrees with ContainerAllocated (%q)", data, ev.msg.Key, containerOf[data.OrderID])
				}
				if reefers[data.ContainerID] {
					t.Errorf("reefer %s assigned twice", data.ContainerID)
				}
				reefers[data.ContainerID] = true
			}
			for _, topic := range []string{"order-retries", "order-dead-letter"} {
				if got := e.readAll(topic); len(got) != 0 {
					t.Errorf("%d records on %s, want none", len(got), topic)
				}
			}
			// The emitted events came back on the orders topic and were skipped.
			if got := metric(t, cfg, "reefer_manager_records_skipped_total"); got != n+1 {
				// n ContainerAllocated, one of them written twice for the duplicate order
				t.Errorf("records_skipped_total = %v, want %d", got, n+1)
			}
			if got := metric(t, cfg, "reefer_manager_orders_allocated_total"); got != n+1 {
				t.Errorf("orders_allocated_total = %v, want %d (the duplicate is allocated again, idempotently)", got, n+1)
			}
			if err := svc.stop(); err != nil {
				t.Fatal(err)
			}
			store, err := reeferstore.Open(context.Background(), cfg.DatabaseURL, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer store.Close()
			if count, err := store.CountAllocations(context.Background()); err != nil || count != n {
				t.Errorf("allocations in the database = %d (%v), want %d", count, err, n)
			}
		})
	}
}

// TestInventoryUnavailableHandsOrdersToRetry: with the inventory answering
// 503, each order goes to order-retries once, with the contract's headers
// and its key and value byte for byte; nothing is dead-lettered.
func TestInventoryUnavailableHandsOrdersToRetry(t *testing.T) {
	e := newEnv(t)
	e.inv.status.Store(http.StatusServiceUnavailable)
	cfg := e.config(nil)
	e.start(cfg)

	before := time.Now().Add(-time.Millisecond)
	produced := e.produce(orders(t, "R", 12)...)
	e.waitAllCommitted(3 * time.Minute)
	after := time.Now().Add(time.Millisecond)

	retries := e.readAll("order-retries")
	if len(retries) != len(produced) {
		t.Fatalf("%d records on order-retries, want %d", len(retries), len(produced))
	}
	byKey := map[string]kafka.Message{}
	for _, m := range produced {
		byKey[string(m.Key)] = m
	}
	policy := cfg.BackoffPolicy()
	fastFailed := 0
	for _, r := range retries {
		in, ok := byKey[string(r.Key)]
		if !ok {
			t.Errorf("unexpected retry record key %q", r.Key)
			continue
		}
		if !bytes.Equal(r.Value, in.Value) {
			t.Errorf("order %s: retry value differs from the original", r.Key)
		}
		meta, err := retrymeta.ParseRetry(r.Headers)
		if err != nil {
			t.Errorf("order %s: %v", r.Key, err)
			continue
		}
		if meta.Attempt != 1 || meta.ErrorClass != failure.Transient || meta.OriginalTopic != "orders" ||
			meta.OriginalPartition != in.Partition || meta.OriginalOffset != in.Offset ||
			!meta.OriginalTimestamp.Equal(in.Time.Truncate(time.Millisecond)) {
			t.Errorf("order %s: meta %+v; want attempt 1, transient, original orders/%d@%d at %s",
				r.Key, meta, in.Partition, in.Offset, in.Time)
		}
		if meta.FirstFailureAt.Before(before) || meta.FirstFailureAt.After(after) || !meta.LastFailureAt.Equal(meta.FirstFailureAt) {
			t.Errorf("order %s: failure times %s / %s, want one time during the test", r.Key, meta.FirstFailureAt, meta.LastFailureAt)
		}
		// After 5 failures the circuit opens: later orders fail fast with
		// circuit-open, and the time left until the circuit lets a probe
		// through (at most its 5 s open timeout) overrides the backoff.
		delay := meta.DueAt.Sub(meta.LastFailureAt)
		lo, hi := time.Duration(float64(policy.Base)*0.9)-time.Millisecond, time.Duration(float64(policy.Base)*1.1)+time.Millisecond
		if strings.Contains(meta.ErrorMessage, "circuit") {
			fastFailed++
			hi = max(hi, 5*time.Second)
		} else if !strings.Contains(meta.ErrorMessage, "503") {
			t.Errorf("order %s: error message %q does not say 503", r.Key, meta.ErrorMessage)
		}
		if delay < lo || delay > hi {
			t.Errorf("order %s: due %s after the failure, want within [%s, %s]", r.Key, delay, lo, hi)
		}
		if _, ok := retrymeta.Get(r.Headers, retrymeta.HeaderDLQReason); ok {
			t.Errorf("order %s: retry record carries %s", r.Key, retrymeta.HeaderDLQReason)
		}
	}
	if got := e.readAll("order-dead-letter"); len(got) != 0 {
		t.Errorf("%d dead letters, want none", len(got))
	}
	if got := metric(t, cfg, "reefer_manager_records_retried_total"); got != float64(len(produced)) {
		t.Errorf("records_retried_total = %v, want %d", got, len(produced))
	}
	// The calls the open circuit refused, and only those, are fast failures.
	if got := metric(t, cfg, "reefer_manager_inventory_fast_failures_total"); fastFailed == 0 || got != float64(fastFailed) {
		t.Errorf("inventory_fast_failures_total = %v; %d retry records say circuit-open (want as many, and some)", got, fastFailed)
	}
	// A lag series for every partition of orders (not only the one read
	// last), and zero once the group committed everything.
	e.waitAllCommitted(15 * time.Second)
	for _, p := range partitions("orders") {
		if got := metric(t, cfg, fmt.Sprintf(`reefer_manager_consumer_lag{partition="%d",topic="orders"}`, p)); got != 0 {
			t.Errorf("consumer lag of orders partition %d = %v after everything was committed, want 0", p, got)
		}
	}
}

// TestInventoryRefusalDeadLettersAtOnce: a 422 is permanent; the order is
// dead-lettered on its first failure and the inventory is not asked again.
func TestInventoryRefusalDeadLettersAtOnce(t *testing.T) {
	e := newEnv(t)
	e.inv.status.Store(http.StatusUnprocessableEntity)
	cfg := e.config(nil)
	e.start(cfg)

	produced := e.produce(orders(t, "D", 6)...)
	e.waitAllCommitted(3 * time.Minute)

	dead := e.readAll("order-dead-letter")
	if len(dead) != len(produced) {
		t.Fatalf("%d dead letters, want %d", len(dead), len(produced))
	}
	for _, d := range dead {
		meta, err := retrymeta.Parse(d.Headers)
		if err != nil {
			t.Fatal(err)
		}
		if meta.DLQReason != retrymeta.PermanentError || meta.Attempt != 1 || meta.ErrorClass != failure.Permanent ||
			meta.ErrorStack == "" || meta.DeadLetteredAt.IsZero() || meta.OriginalTopic != "orders" ||
			!strings.Contains(meta.ErrorMessage, "422") {
			t.Errorf("dead letter %s: meta %+v", d.Key, meta)
		}
	}
	if got := e.readAll("order-retries"); len(got) != 0 {
		t.Errorf("%d records on order-retries, want none", len(got))
	}
	for id, n := range e.inv.callCounts() {
		if n != 1 {
			t.Errorf("order %s: %d inventory calls, want 1", id, n)
		}
	}
	if got := metric(t, cfg, `reefer_manager_records_dead_lettered_total{reason="permanent-error"}`); got != float64(len(produced)) {
		t.Errorf("dead_lettered_total{permanent-error} = %v, want %d", got, len(produced))
	}
}

// TestMalformedRecordIsPoisonAndTheServiceKeepsGoing: an undecodable
// record and an invalid order are dead-lettered as poison, value
// untouched, and the orders after them are still allocated.
func TestMalformedRecordIsPoisonAndTheServiceKeepsGoing(t *testing.T) {
	e := newEnv(t)
	cfg := e.config(nil)
	e.start(cfg)

	garbage := kafka.Message{Topic: "orders", Key: []byte("P-1"), Value: []byte("\x00not an event{")}
	// A well-formed envelope whose order breaks the rules (quantity 0).
	invalid := order(t, "P-2", 1)
	env, err := events.Decode(invalid.Value)
	if err != nil {
		t.Fatal(err)
	}
	env.Data = bytes.Replace(env.Data, []byte(`"quantity":1`), []byte(`"quantity":0`), 1)
	if invalid.Value, err = events.Encode(env); err != nil {
		t.Fatal(err)
	}
	e.produce(append([]kafka.Message{garbage, invalid}, orders(t, "OK", 5)...)...)
	e.waitAllCommitted(3 * time.Minute)

	dead := e.readAll("order-dead-letter")
	poisoned := map[string]kafka.Message{}
	for _, d := range dead {
		meta, err := retrymeta.Parse(d.Headers)
		if err != nil {
			t.Fatal(err)
		}
		if meta.DLQReason != retrymeta.Poison || meta.ErrorClass != failure.Permanent {
			t.Errorf("dead letter %s: reason %q class %q, want poison, permanent", d.Key, meta.DLQReason, meta.ErrorClass)
		}
		poisoned[string(d.Key)] = d
	}
	if got, ok := poisoned["P-1"]; !ok || !bytes.Equal(got.Value, garbage.Value) {
		t.Errorf("garbage record not dead-lettered byte for byte (got %q)", got.Value)
	}
	if _, ok := poisoned["P-2"]; !ok {
		t.Error("invalid order not dead-lettered")
	}
	if allocated, _ := e.eventsOf("orders", events.TypeContainerAllocated); len(allocated) != 5 {
		t.Errorf("%d orders allocated after the poison records, want 5", len(allocated))
	}
	if got := metric(t, cfg, `reefer_manager_records_dead_lettered_total{reason="poison"}`); got != 2 {
		t.Errorf("dead_lettered_total{poison} = %v, want 2", got)
	}
}

// TestOwnEventTypesAreSkipped: events of other types on the orders topic
// are committed without processing: no inventory call, no hand-off.
func TestOwnEventTypesAreSkipped(t *testing.T) {
	e := newEnv(t)
	cfg := e.config(nil)
	e.start(cfg)

	var msgs []kafka.Message
	for _, ev := range []struct {
		typ  string
		data any
	}{
		{events.TypeContainerAllocated, events.ContainerAllocated{OrderID: "S-1", ContainerID: "C-0001"}},
		{events.TypeOrderRejected, events.OrderRejected{OrderID: "S-1", Reason: "too big"}},
	} {
		env, err := events.New("/elsewhere", ev.typ, "S-1", ev.data, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		value, err := events.Encode(env)
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, kafka.Message{Topic: "orders", Key: []byte("S-1"), Value: value})
	}
	e.produce(msgs...)
	e.waitAllCommitted(3 * time.Minute)

	if got := metric(t, cfg, "reefer_manager_records_skipped_total"); got != 2 {
		t.Errorf("records_skipped_total = %v, want 2", got)
	}
	if calls := e.inv.callCounts(); len(calls) != 0 {
		t.Errorf("inventory called for skipped events: %v", calls)
	}
	for _, topic := range []string{"containers", "order-retries", "order-dead-letter"} {
		if got := e.readAll(topic); len(got) != 0 {
			t.Errorf("%d records on %s, want none", len(got), topic)
		}
	}
}
