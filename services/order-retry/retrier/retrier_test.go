package retrier_test

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/failure"
	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/retrymeta"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/reeferstore"
	"github.com/reeferdlq/reefer-dlq/pkg/testkit/pgtest"
	"github.com/reeferdlq/reefer-dlq/services/container-inventory-mock/inventorymock/faults"
)

// contractHeaders are the headers every dead-letter record carries
// (docs/contract.md), each exactly once.
var contractHeaders = []string{
	retrymeta.HeaderAttempt, retrymeta.HeaderDueAt, retrymeta.HeaderFirstFailureAt, retrymeta.HeaderLastFailureAt,
	retrymeta.HeaderErrorClass, retrymeta.HeaderErrorMessage,
	retrymeta.HeaderOriginalTopic, retrymeta.HeaderOriginalPartition, retrymeta.HeaderOriginalOffset, retrymeta.HeaderOriginalTimestamp,
	retrymeta.HeaderErrorStack, retrymeta.HeaderDLQReason, retrymeta.HeaderDeadLetteredAt,
}

// checkContractHeaders reports a dead letter that lacks a contract header
// or carries one more than once.
func checkContractHeaders(t *testing.T, m kafka.Message) {
	t.Helper()
	count := map[string]int{}
	for _, h := range m.Headers {
		count[h.Key]++
	}
	for _, name := range contractHeaders {
		if count[name] != 1 {
			t.Errorf("dead letter %s carries %s %d times, want once", m.Key, name, count[name])
		}
	}
	if _, err := retrymeta.Parse(m.Headers); err != nil {
		t.Errorf("dead letter %s: headers do not parse: %v", m.Key, err)
	}
}

// byKey indexes records by key; it fails the test on a second record with
// the same key.
func byKey(t *testing.T, what string, msgs []kafka.Message) map[string]kafka.Message {
	t.Helper()
	out := map[string]kafka.Message{}
	for _, m := range msgs {
		if _, dup := out[string(m.Key)]; dup {
			t.Errorf("two %s for %s", what, m.Key)
		}
		out[string(m.Key)] = m
	}
	return out
}

// TestFailFirstTwoIsAllocatedOnTheThirdAttempt: the inventory fails the
// first two calls of each order. Attempt 1 (reefer-manager's) and attempt 2
// (the first retry) fail, attempt 3 allocates; each wait lies within the
// jitter bounds of its attempt and no retry starts before its due time.
// Run against both stores.
func TestFailFirstTwoIsAllocatedOnTheThirdAttempt(t *testing.T) {
	stores := []struct {
		name string
		url  func(t *testing.T) string
	}{
		{"sqlite", func(*testing.T) string { return "" }},
		{"postgres", func(t *testing.T) string { return pgtest.Start(t) }},
	}
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			e := newEnv(t, st.url(t))
			e.setFaults(faults.Profile{FailFirst: &faults.FailFirst{Count: 2, Status: 503}})
			cfg := e.config(nil)
			// Four orders: the inventory client's circuit opens after five
			// consecutive failures, and each order fails once here.
			ids := orderIDs("FF", 4)
			first := byKey(t, "first retry records", e.firstAttempt(cfg, ids...))
			e.start(cfg)

			waitFor(t, 3*time.Minute, "every order allocated", func() bool { return len(e.allocatedContainers()) == len(ids) })
			e.waitAllCommitted(3 * time.Minute)

			second := map[string]kafka.Message{}
			for _, m := range e.readAll(retryTopic) {
				if meta, _ := retrymeta.Parse(m.Headers); meta.Attempt == 2 {
					second[string(m.Key)] = m
				}
			}
			policy := cfg.BackoffPolicy()
			allocated := e.allocatedContainers()
			for _, id := range ids {
				got := e.allocateCalls(id)
				statuses := make([]int, len(got))
				for i, c := range got {
					statuses[i] = c.Status
				}
				if len(got) != 3 || statuses[0] != 503 || statuses[1] != 503 || statuses[2] != 200 {
					t.Errorf("order %s: inventory answered %v, want [503 503 200]", id, statuses)
					continue
				}
				for attempt, rec := range []kafka.Message{first[id], second[id]} {
					meta, err := retrymeta.ParseRetry(rec.Headers)
					if err != nil {
						t.Errorf("order %s: retry record of attempt %d: %v", id, attempt+1, err)
						continue
					}
					// Proportional jitter: the exponential delay ±10%; the
					// headers have millisecond resolution.
					nominal := policy.Exponential(meta.Attempt)
					lo := time.Duration(float64(nominal)*0.9) - time.Millisecond
					hi := time.Duration(float64(nominal)*1.1) + time.Millisecond
					if delay := meta.DueAt.Sub(meta.LastFailureAt); delay < lo || delay > hi {
						t.Errorf("order %s: attempt %d waits %s, want within [%s, %s]", id, meta.Attempt, delay, lo, hi)
					}
					if next := got[meta.Attempt]; next.Time.Before(meta.DueAt) {
						t.Errorf("order %s: attempt %d started at %s, before its due time %s", id, meta.Attempt+1,
							next.Time.Format(time.StampMilli), meta.DueAt.Format(time.StampMilli))
					}
				}
				if len(allocated[id]) != 1 || allocated[id][0] != got[2].ContainerID {
					t.Errorf("order %s: ContainerAllocated %v, want the one container the inventory allocated (%s)", id, allocated[id], got[2].ContainerID)
				}
			}
			if len(second) != len(ids) {
				t.Errorf("%d records republished with attempt 2, want %d", len(second), len(ids))
			}
			if got := e.readAll(dlqTopic); len(got) != 0 {
				t.Errorf("%d dead letters, want none", len(got))
			}
			n := float64(len(ids))
			for series, want := range map[string]float64{
				`order_retry_attempts_total{attempt="2"}`:                      n,
				`order_retry_attempts_total{attempt="3"}`:                      n,
				`order_retry_successes_total{attempt="3",outcome="allocated"}`: n,
				`order_retry_records_retried_total`:                            n,
				`order_retry_lateness_seconds_count`:                           2 * n,
			} {
				if got := metric(t, cfg.HTTPAddr, series); got != want {
					t.Errorf("%s = %v, want %v", series, got, want)
				}
			}

			store, err := reeferstore.Open(context.Background(), cfg.DatabaseURL, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer store.Close()
			for _, id := range ids {
				if c, ok, err := store.Allocation(context.Background(), id); err != nil || !ok || c != allocated[id][0] {
					t.Errorf("order %s: database allocation %q (found %v, %v), want %v", id, c, ok, err, allocated[id])
				}
			}
		})
	}
}

// TestInventoryDownDeadLettersAfterMaxAttempts: with the inventory down
// and RETRY_MAX_ATTEMPTS=3, each order is retried twice here and then
// dead-lettered exactly once, value unchanged, with every contract header,
// attempt 3 and reason max-attempts.
func TestInventoryDownDeadLettersAfterMaxAttempts(t *testing.T) {
	e := newEnv(t, "")
	e.setFaults(faults.Profile{Outage: &faults.Outage{Mode: faults.OutageStatus, Status: 503}})
	cfg := e.config(map[string]string{"RETRY_MAX_ATTEMPTS": "3"})
	ids := orderIDs("DOWN", 3)
	first := byKey(t, "first retry records", e.firstAttempt(cfg, ids...))
	e.start(cfg)

	waitFor(t, 3*time.Minute, "a dead letter per order", func() bool { return len(e.readAll(dlqTopic)) >= len(ids) })
	e.waitAllCommitted(3 * time.Minute)

	dead := e.readAll(dlqTopic)
	if len(dead) != len(ids) {
		t.Fatalf("%d dead letters, want exactly %d", len(dead), len(ids))
	}
	origs := byKey(t, "orders", e.readAll("orders"))
	for key, d := range byKey(t, "dead letters", dead) {
		orig := origs[key]
		checkContractHeaders(t, d)
		if !bytes.Equal(d.Value, orig.Value) {
			t.Errorf("dead letter %s: value differs from the original order", key)
		}
		meta, err := retrymeta.Parse(d.Headers)
		if err != nil {
			continue // reported above
		}
		firstMeta, _ := retrymeta.Parse(first[key].Headers)
		if meta.Attempt != 3 || meta.DLQReason != retrymeta.MaxAttempts || meta.ErrorClass != failure.Transient {
			t.Errorf("dead letter %s: attempt %d reason %q class %q, want 3, max-attempts, transient", key, meta.Attempt, meta.DLQReason, meta.ErrorClass)
		}
		if meta.OriginalTopic != "orders" || meta.OriginalPartition != orig.Partition || meta.OriginalOffset != orig.Offset ||
			!meta.OriginalTimestamp.Equal(orig.Time.Truncate(time.Millisecond)) {
			t.Errorf("dead letter %s: original %s/%d@%d at %s, want orders/%d@%d at %s", key, meta.OriginalTopic,
				meta.OriginalPartition, meta.OriginalOffset, meta.OriginalTimestamp, orig.Partition, orig.Offset, orig.Time)
		}
		if !meta.FirstFailureAt.Equal(firstMeta.FirstFailureAt) || meta.LastFailureAt.Before(meta.FirstFailureAt) ||
			meta.DeadLetteredAt.Before(meta.LastFailureAt) {
			t.Errorf("dead letter %s: first failure %s (want %s), last %s, dead-lettered %s", key,
				meta.FirstFailureAt, firstMeta.FirstFailureAt, meta.LastFailureAt, meta.DeadLetteredAt)
		}
		if !strings.Contains(meta.ErrorMessage, "503") && !strings.Contains(meta.ErrorMessage, "circuit") {
			t.Errorf("dead letter %s: error message %q says neither 503 nor circuit open", key, meta.ErrorMessage)
		}
		if calls := e.allocateCalls(key); len(calls) < 1 || len(calls) > 3 {
			t.Errorf("order %s: %d inventory calls, want 1 to 3 (one per attempt that reached it)", key, len(calls))
		}
	}
	// Each hop replaced the headers: the republished record has as many as
	// the first.
	for _, m := range e.readAll(retryTopic) {
		if meta, _ := retrymeta.Parse(m.Headers); meta.Attempt == 2 && len(m.Headers) != len(first[string(m.Key)].Headers) {
			t.Errorf("order %s: %d headers after the second hop, %d after the first", m.Key, len(m.Headers), len(first[string(m.Key)].Headers))
		}
	}
	if got := e.allocatedContainers(); len(got) != 0 {
		t.Errorf("orders allocated while the inventory is down: %v", got)
	}
	if got := metric(t, cfg.HTTPAddr, `order_retry_records_dead_lettered_total{reason="max-attempts"}`); got != float64(len(ids)) {
		t.Errorf("dead_lettered_total{max-attempts} = %v, want %d", got, len(ids))
	}
}

// TestInventoryRefusalDeadLettersAfterOneAttempt: when the inventory
// answers 422 to the retry, the order is dead-lettered with
// permanent-error at once; it is not retried again.
func TestInventoryRefusalDeadLettersAfterOneAttempt(t *testing.T) {
	e := newEnv(t, "")
	e.setFaults(faults.Profile{Outage: &faults.Outage{Mode: faults.OutageStatus, Status: 503}})
	cfg := e.config(nil)
	ids := orderIDs("REF", 3)
	first := e.firstAttempt(cfg, ids...)
	e.setFaults(faults.Profile{Rules: []faults.Rule{{Name: "refuse", OrderID: "^", Status: 422}}})
	e.start(cfg)

	waitFor(t, 3*time.Minute, "a dead letter per order", func() bool { return len(e.readAll(dlqTopic)) >= len(ids) })
	e.waitAllCommitted(3 * time.Minute)

	for key, d := range byKey(t, "dead letters", e.readAll(dlqTopic)) {
		checkContractHeaders(t, d)
		meta, _ := retrymeta.Parse(d.Headers)
		if meta.DLQReason != retrymeta.PermanentError || meta.Attempt != 2 || meta.ErrorClass != failure.Permanent ||
			!strings.Contains(meta.ErrorMessage, "422") || meta.ErrorStack == "" {
			t.Errorf("dead letter %s: reason %q attempt %d class %q message %q; want permanent-error, 2, permanent, a 422 and a stack",
				key, meta.DLQReason, meta.Attempt, meta.ErrorClass, meta.ErrorMessage)
		}
		if calls := e.allocateCalls(key); len(calls) != 2 {
			t.Errorf("order %s: %d inventory calls, want 2 (the first attempt and one retry)", key, len(calls))
		}
	}
	if got := e.readAll(retryTopic); len(got) != len(first) {
		t.Errorf("%d records on the retry topic, want only the %d first ones: a refusal is not retried", len(got), len(first))
	}
	if got := metric(t, cfg.HTTPAddr, `order_retry_records_dead_lettered_total{reason="permanent-error"}`); got != float64(len(ids)) {
		t.Errorf("dead_lettered_total{permanent-error} = %v, want %d", got, len(ids))
	}
}

// TestUnreadableRecordsArePoison: records whose retry headers are missing,
// garbage or due implausibly far ahead, and a record whose value is not
// an event, are dead-lettered as poison with a complete, valid header set
// and the value byte for byte; the inventory is never called for them and
// the service goes on with the next record.
func TestUnreadableRecordsArePoison(t *testing.T) {
	e := newEnv(t, "")
	cfg := e.config(nil)
	origs := e.publishOrders(orderIDs("PZ", 7)...)
	now := time.Now()
	const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	set := func(m kafka.Message, key, value string) kafka.Message {
		h := make([]kafka.Header, 0, len(m.Headers))
		for _, x := range m.Headers {
			if x.Key != key {
				h = append(h, x)
			}
		}
		m.Headers = append(h, kafka.Header{Key: key, Value: []byte(value)})
		return m
	}
	valid := func(i int) kafka.Message {
		m := retryRecord(origs[i], 2, now)
		m.Headers = append(m.Headers, kafka.Header{Key: retrymeta.HeaderTraceParent, Value: []byte(traceparent)})
		return m
	}
	tests := []struct {
		name string
		msg  kafka.Message
		// wantAttempt is the dead letter's x-retry-attempt: what could be
		// read, plus this failed processing.
		wantAttempt int
		// ownCoordinates: the original coordinates could not be read, so
		// the dead letter names the retry record itself.
		ownCoordinates bool
	}{
		{"no retry headers", kafka.Message{Topic: retryTopic, Key: origs[0].Key, Value: origs[0].Value,
			Headers: []kafka.Header{{Key: retrymeta.HeaderTraceParent, Value: []byte(traceparent)}}}, 1, true},
		{"attempt not a number", set(valid(1), retrymeta.HeaderAttempt, "three"), 1, false},
		{"due time not a time", set(valid(2), retrymeta.HeaderDueAt, "tomorrow"), 3, false},
		{"due time beyond MAX_DUE_AHEAD", set(valid(3), retrymeta.HeaderDueAt, strconv.FormatInt(now.Add(48*time.Hour).UnixMilli(), 10)), 3, false},
		{"original partition garbage", set(valid(4), retrymeta.HeaderOriginalPartition, "-1"), 3, true},
		{"value not an event", func() kafka.Message { m := valid(5); m.Value = []byte("\x00garbage{"); return m }(), 3, false},
	}
	msgs := make([]kafka.Message, 0, len(tests)+1)
	for _, tt := range tests {
		msgs = append(msgs, tt.msg)
	}
	// A good record after the poison ones: the service must go on.
	good := retryRecord(origs[6], 1, now)
	stored := byKey(t, "retry records", e.produce(append(msgs, good)...))

	e.start(cfg)
	waitFor(t, 3*time.Minute, "the good order allocated", func() bool { return len(e.allocatedContainers()) == 1 })
	e.waitAllCommitted(3 * time.Minute)

	dead := byKey(t, "dead letters", e.readAll(dlqTopic))
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := string(tt.msg.Key)
			d, ok := dead[key]
			if !ok {
				t.Fatalf("no dead letter for %s", key)
			}
			checkContractHeaders(t, d)
			if !bytes.Equal(d.Value, tt.msg.Value) {
				t.Errorf("value %q, want %q byte for byte", d.Value, tt.msg.Value)
			}
			meta, err := retrymeta.Parse(d.Headers)
			if err != nil {
				t.Fatal(err)
			}
			if meta.DLQReason != retrymeta.Poison || meta.ErrorClass != failure.Permanent || meta.Attempt != tt.wantAttempt {
				t.Errorf("reason %q class %q attempt %d, want poison, permanent, %d (error %q)",
					meta.DLQReason, meta.ErrorClass, meta.Attempt, tt.wantAttempt, meta.ErrorMessage)
			}
			in := stored[key]
			wantTopic, wantPartition, wantOffset := "orders", origs[i].Partition, origs[i].Offset
			if tt.ownCoordinates {
				wantTopic, wantPartition, wantOffset = retryTopic, in.Partition, in.Offset
			}
			if meta.OriginalTopic != wantTopic || meta.OriginalPartition != wantPartition || meta.OriginalOffset != wantOffset {
				t.Errorf("original %s/%d@%d, want %s/%d@%d", meta.OriginalTopic, meta.OriginalPartition, meta.OriginalOffset,
					wantTopic, wantPartition, wantOffset)
			}
			if tp, _ := retrymeta.Get(d.Headers, retrymeta.HeaderTraceParent); tp != traceparent {
				t.Errorf("traceparent %q, want it kept", tp)
			}
			if calls := e.allocateCalls(key); len(calls) != 0 {
				t.Errorf("%d inventory calls for a poison record", len(calls))
			}
		})
	}
	if got := metric(t, cfg.HTTPAddr, `order_retry_records_dead_lettered_total{reason="poison"}`); got != float64(len(tests)) {
		t.Errorf("dead_lettered_total{poison} = %v, want %d", got, len(tests))
	}
}

// TestDueSoonerIsNotHeldBackByDueLater: on one partition, a record due in
// 3 s followed by one due in 300 ms. The second runs at its own due time,
// not after the first; and the group's committed offset does not pass
// the first while it waits.
func TestDueSoonerIsNotHeldBackByDueLater(t *testing.T) {
	e := newEnv(t, "")
	cfg := e.config(nil)
	origs := e.publishOrders("SLOW", "FAST")
	e.start(cfg)

	w, err := e.kafka.NewWriter("")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	// Both on partition 0, the slow one first (the lower offset).
	w.Balancer = kafka.BalancerFunc(func(_ kafka.Message, partitions ...int) int { return partitions[0] })
	now := time.Now().Truncate(time.Millisecond)
	slowDue, fastDue := now.Add(3*time.Second), now.Add(300*time.Millisecond)
	stored := byKey(t, "retry records", e.write(w, retryRecord(origs[0], 3, slowDue), retryRecord(origs[1], 1, fastDue)))
	slow, fast := stored["SLOW"], stored["FAST"]
	if slow.Partition != fast.Partition || slow.Offset > fast.Offset {
		t.Fatalf("records at %d@%d and %d@%d, want one partition, slow first", slow.Partition, slow.Offset, fast.Partition, fast.Offset)
	}

	// Order, not wall-clock windows, so that a loaded machine cannot fail
	// it: FAST runs at or after its due time and before SLOW; SLOW never
	// before its own. The bounds of the waits matter only when nothing
	// happens.
	waitFor(t, 3*time.Minute, "FAST allocated", func() bool { return len(e.allocateCalls("FAST")) == 1 })
	started := e.allocateCalls("FAST")[0].Time
	if started.Before(fastDue) {
		t.Errorf("FAST started at %s, before its due time %s", started.Format(time.StampMilli), fastDue.Format(time.StampMilli))
	}
	// Give the committer a few intervals: while SLOW waits, the commit
	// must not pass it.
	time.Sleep(600 * time.Millisecond)
	committed := e.committed()[slow.Partition]
	if calls := e.allocateCalls("SLOW"); len(calls) == 0 && committed > slow.Offset {
		t.Errorf("committed offset %d passes the waiting record at offset %d", committed, slow.Offset)
	}

	e.waitAllCommitted(3 * time.Minute)
	calls := e.allocateCalls("SLOW")
	if len(calls) != 1 || calls[0].Time.Before(slowDue) {
		t.Errorf("SLOW calls %v, want one at or after %s", calls, slowDue.Format(time.StampMilli))
	} else if !started.Before(calls[0].Time) {
		t.Errorf("FAST started at %s, after SLOW (%s): held back by the record before it",
			started.Format(time.StampMilli), calls[0].Time.Format(time.StampMilli))
	}
}

// TestShutdownLeavesWaitingRecordsForTheNextRun: a graceful stop does not
// wait for records that are not due yet and does not commit them; the next
// run gets them again and runs them at their due time.
func TestShutdownLeavesWaitingRecordsForTheNextRun(t *testing.T) {
	e := newEnv(t, "")
	cfg := e.config(nil)
	ids := orderIDs("SD", 5)
	origs := e.publishOrders(ids...)
	svc := e.start(cfg)

	// Due far enough ahead that a loaded -race run still stops before it
	// (the stop must not wait for them); the next run waits out the rest.
	due := time.Now().Add(8 * time.Second).Truncate(time.Millisecond)
	msgs := make([]kafka.Message, len(origs))
	for i, o := range origs {
		msgs[i] = retryRecord(o, 1, due)
	}
	e.produce(msgs...)
	waitFor(t, 3*time.Minute, "every record pending", func() bool {
		return metric(t, cfg.HTTPAddr, "order_retry_pending_records") == float64(len(msgs))
	})
	// Waiting records are fetched but not committed: they are the group's
	// lag, on whichever partitions they landed.
	var lag float64
	for p := range testTopics[retryTopic] {
		lag += metric(t, cfg.HTTPAddr, fmt.Sprintf(`order_retry_consumer_lag{partition="%d",topic="%s"}`, p, retryTopic))
	}
	if lag != float64(len(msgs)) {
		t.Errorf("consumer lag summed over the partitions = %v with %d records waiting, want %d", lag, len(msgs), len(msgs))
	}
	if err := svc.stop(); err != nil {
		t.Fatal(err)
	}
	if stopped := time.Now(); !stopped.Before(due) {
		t.Errorf("the stop returned at %s, after the records' due time %s: it waited for them", stopped, due)
	}
	for p, c := range e.committed() {
		if c > 0 {
			t.Errorf("partition %d committed up to %d with no record concluded", p, c)
		}
	}

	next := e.config(nil) // same database and broker, another ops address
	e.start(next)
	waitFor(t, 3*time.Minute, "every order allocated by the next run", func() bool { return len(e.allocatedContainers()) == len(ids) })
	e.waitAllCommitted(3 * time.Minute)
	for _, id := range ids {
		if calls := e.allocateCalls(id); len(calls) != 1 || calls[0].Time.Before(due) {
			t.Errorf("order %s: calls %v, want one at or after %s", id, calls, due.Format(time.StampMilli))
		}
	}
}

// TestFullPendingPausesFetchingAndLosesNothing: with MAX_PENDING=4 and a
// slow inventory, the service holds four records and stops fetching; once
// the inventory is quick again it concludes every record, each once.
func TestFullPendingPausesFetchingAndLosesNothing(t *testing.T) {
	e := newEnv(t, "")
	// INVENTORY_TIMEOUT far above the latency: a loaded -race run must not
	// turn a slow call into a failure.
	cfg := e.config(map[string]string{"MAX_PENDING": "4", "MAX_IN_FLIGHT": "2", "INVENTORY_TIMEOUT": "20s"})
	ids := orderIDs("FULL", 24)
	origs := e.publishOrders(ids...)
	// Slow, but within INVENTORY_TIMEOUT.
	e.setFaults(faults.Profile{Latency: faults.Duration(time.Second)})
	e.start(cfg)

	due := time.Now()
	msgs := make([]kafka.Message, len(origs))
	for i, o := range origs {
		msgs[i] = retryRecord(o, 1, due)
	}
	e.produce(msgs...)
	waitFor(t, 3*time.Minute, "two records running and two waiting", func() bool {
		return metric(t, cfg.HTTPAddr, "order_retry_running_records") == 2 && metric(t, cfg.HTTPAddr, "order_retry_pending_records") == 2
	})
	// Give the fetch loop time to take more, if it would.
	time.Sleep(300 * time.Millisecond)
	// Four held, plus at most the one the fetch loop holds while it waits
	// for room.
	if got := metric(t, cfg.HTTPAddr, "order_retry_records_consumed_total"); got > 5 {
		t.Errorf("%v records fetched while MAX_PENDING=4 were held, want at most 5", got)
	}

	e.setFaults(faults.Profile{})
	waitFor(t, 3*time.Minute, "every order allocated", func() bool { return len(e.allocatedContainers()) == len(ids) })
	e.waitAllCommitted(3 * time.Minute)
	for _, id := range ids {
		if calls := e.allocateCalls(id); len(calls) != 1 {
			t.Errorf("order %s: %d inventory calls, want 1", id, len(calls))
		}
	}
}
