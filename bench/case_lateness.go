package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/reeferdlq/reefer-dlq/bench/baseline"
	"github.com/reeferdlq/reefer-dlq/bench/report"
	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/consumer"
	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/failure"
	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/retrymeta"
	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/scheduler"
	"github.com/reeferdlq/reefer-dlq/services/container-inventory-mock/inventorymock/admin"
	"github.com/reeferdlq/reefer-dlq/services/container-inventory-mock/inventorymock/calls"
	"github.com/reeferdlq/reefer-dlq/services/order-retry/retrier"
)

// caseLateness is case 6: how close to its due time each retry runs. The
// same records (the same delays, drawn from one seed) go to three
// consumers of a retry topic:
//
//   - order-retry itself, in this process: lateness is measured where the
//     retry reaches the inventory (the mock's call log), so it includes
//     the Postgres allocation before the call: an upper bound;
//   - pkg/kafkaretry/scheduler driven by pkg/kafkaretry/consumer on the broker with a no-op
//     handler: the scheduling alone;
//   - the re-created pause-until-head-is-due consumer, no-op handler: its
//     lateness is the head-of-line delay.
func caseLateness(ctx context.Context, e *env) ([]report.Row, error) {
	k := e.p.retries
	params := fmt.Sprintf("%d retry records on 6 partitions, due %s to %s after they are produced (uniform, one seed for all three consumers), produced in chunks of 500 as they are stamped",
		k, e.p.minDelay, e.p.maxDelay)
	lateGoals := []report.Goal{
		{Metric: "p99_ms", Op: "<=", Target: 50},
		{Metric: "early", Op: "==", Target: 0},
	}
	var rows []report.Row

	lat, extra, w, err := e.latenessOrderRetry(ctx, "c6r")
	if err != nil {
		return rows, fmt.Errorf("order-retry: %w", err)
	}
	rows = append(rows, latenessRow("6-retry", "retry lateness: order-retry (p99)",
		params+"; order-retry in process (MAX_PENDING 10000, MAX_IN_FLIGHT 64), healthy inventory; lateness = arrival of the retry's inventory call - x-retry-due-at",
		lat, w, extra, append(slices.Clone(lateGoals), report.Goal{Metric: "dead_letters", Op: "==", Target: 0}), nil))

	lat, w, err = e.latenessScheduler(ctx, "c6s")
	if err != nil {
		return rows, fmt.Errorf("scheduler: %w", err)
	}
	rows = append(rows, latenessRow("6-sched", "retry lateness: pkg/kafkaretry/scheduler on the broker (p99)",
		params+"; pkg/kafkaretry/consumer group reader + scheduler.Scheduler (MaxPending 10000, 64 workers), no-op handler; lateness = handler start - x-retry-due-at",
		lat, w, nil, lateGoals, nil))

	lat, w, err = e.latenessPauseUntilDue(ctx, "c6p")
	if err != nil {
		return rows, fmt.Errorf("pause until due: %w", err)
	}
	rows = append(rows, latenessRow("6-pause", "head-of-line delay: pause-until-head-is-due consumer (p99)",
		params+"; one listener per partition, paused until its head record is due, no-op handler; lateness = handler start - x-retry-due-at",
		lat, w, nil, []report.Goal{{Metric: "early", Op: "==", Target: 0}}, []string{"6-retry"}))
	return rows, nil
}

func latenessRow(key, name, params string, lat *lateness, w window, extra map[string]float64, goals []report.Goal, ratioTo []string) report.Row {
	m := lat.summary()
	for k, v := range extra {
		m[k] = v
	}
	return report.Row{
		Case: "6", Key: key, Name: name, Params: params,
		Value: m["p99_ms"], Unit: "ms",
		Metrics: w.metrics(m),
		RatioTo: ratioTo,
		Goals:   goals,
	}
}

// lateness collects how late records started.
type lateness struct {
	mu    sync.Mutex
	late  []time.Duration
	early int
}

func (l *lateness) add(d time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.late = append(l.late, d)
	if d < 0 {
		l.early++
	}
}

func (l *lateness) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.late)
}

// summary returns the percentiles in milliseconds and the early count.
func (l *lateness) summary() map[string]float64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := slices.Clone(l.late)
	slices.Sort(s)
	ms := func(d time.Duration) float64 { return round(float64(d)/float64(time.Millisecond), 2) }
	pct := func(p float64) float64 {
		if len(s) == 0 {
			return 0
		}
		return ms(s[min(len(s)-1, int(p*float64(len(s))))])
	}
	var sum time.Duration
	for _, d := range s {
		sum += d
	}
	m := map[string]float64{
		"records": float64(len(s)),
		"early":   float64(l.early),
		"p50_ms":  pct(0.50),
		"p99_ms":  pct(0.99),
	}
	if len(s) > 0 {
		m["max_ms"] = ms(s[len(s)-1])
		m["mean_ms"] = ms(sum / time.Duration(len(s)))
	}
	return m
}

// retryRecord is order id as reefer-manager hands it to the retry topic
// after a first failure at failedAt, due at due.
func retryRecord(id string, failedAt, due time.Time, offset int64) (kafka.Message, error) {
	m, err := orderRecord(id, failedAt)
	if err != nil {
		return kafka.Message{}, err
	}
	m.Headers = retrymeta.Apply(nil, retrymeta.Meta{
		Attempt:           1,
		DueAt:             due,
		FirstFailureAt:    failedAt,
		LastFailureAt:     failedAt,
		ErrorClass:        failure.Transient,
		ErrorMessage:      "inventory PUT /containers/R-1/allocation: 503 Service Unavailable",
		OriginalTopic:     "orders",
		OriginalPartition: int(offset % 6),
		OriginalOffset:    offset,
		OriginalTimestamp: failedAt,
	})
	return m, nil
}

// dueOf reads x-retry-due-at, as the services do; the zero time when it
// is missing.
func dueOf(msg kafka.Message) time.Time {
	v, ok := retrymeta.Get(msg.Headers, retrymeta.HeaderDueAt)
	if !ok {
		return time.Time{}
	}
	ms, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}

// produceDue writes the case's retry records, stamping each chunk just
// before it is written, so that a record's delay starts when it reaches
// the broker, not when the bench began producing. It returns the due time
// of every order id.
func (e *env) produceDue(ctx context.Context, topic, prefix string) (map[string]time.Time, error) {
	w, err := e.producer(topic)
	if err != nil {
		return nil, err
	}
	defer w.Close()
	rng := rand.New(rand.NewPCG(6, 6)) // the same delays for every consumer
	span := e.p.maxDelay - e.p.minDelay
	dues := make(map[string]time.Time, e.p.retries)
	const chunk = 500
	for start := 0; start < e.p.retries; start += chunk {
		now := time.Now()
		msgs := make([]kafka.Message, 0, chunk)
		for i := start; i < min(start+chunk, e.p.retries); i++ {
			id := fmt.Sprintf("%s-%07d", prefix, i)
			due := now.Add(e.p.minDelay + time.Duration(rng.Int64N(int64(span)+1)))
			m, err := retryRecord(id, now, due, int64(i))
			if err != nil {
				return nil, err
			}
			dues[id] = dueOf(m) // as written: milliseconds
			msgs = append(msgs, m)
		}
		if err := w.WriteMessages(ctx, msgs...); err != nil {
			return nil, fmt.Errorf("produce retries to %s: %w", topic, err)
		}
	}
	return dues, nil
}

// timeRetries produces the case's retry records to topic and times the
// consumer running in bg until lat has recorded every one.
func (e *env) timeRetries(ctx context.Context, prefix, topic string, lat *lateness, bg *background) (window, error) {
	sw, err := e.startWatch(prefix)
	if err != nil {
		return window{}, err
	}
	if _, err := e.produceDue(ctx, topic, prefix); err != nil {
		return window{}, err
	}
	err = waitUntil(ctx, e.p.maxDelay+2*time.Minute, "every retry handled", func() (bool, error) {
		if err := bg.failed(); err != nil {
			return false, err
		}
		return lat.count() >= e.p.retries, nil
	})
	if err != nil {
		return window{}, err
	}
	return sw.stop(), nil
}

// latenessScheduler runs pkg/kafkaretry/scheduler behind pkg/kafkaretry/consumer with a handler
// that records how late it starts.
func (e *env) latenessScheduler(ctx context.Context, prefix string) (*lateness, window, error) {
	t, err := e.newTopics(ctx, prefix)
	if err != nil {
		return nil, window{}, err
	}
	group := prefix + "-scheduler"
	reader, err := e.kafka.NewReader(kafka.ReaderConfig{GroupID: group, Topic: t.Retry})
	if err != nil {
		return nil, window{}, err
	}
	defer reader.Close()
	lat := &lateness{}
	handler := func(_ context.Context, msg kafka.Message) error {
		now := time.Now()
		if !strings.HasPrefix(string(msg.Key), "warmup") {
			lat.add(now.Sub(dueOf(msg)))
		}
		return nil
	}
	bg := goRun(ctx, func(ctx context.Context) error {
		return consumer.Run(ctx, consumer.Config{
			Reader:     reader,
			Handler:    handler,
			Dispatcher: scheduler.New(scheduler.Config{MaxPending: 10000, Workers: 64, DueAt: dueOf}),
		})
	})
	defer bg.stop()
	warm, err := retryRecord("warmup-"+group+"-00", time.Now(), time.Now(), 0)
	if err != nil {
		return nil, window{}, err
	}
	if err := e.warmUp(ctx, t.Retry, group, &warm); err != nil {
		return nil, window{}, err
	}
	w, err := e.timeRetries(ctx, prefix, t.Retry, lat, bg)
	if err != nil {
		return nil, window{}, err
	}
	return lat, w, bg.stop()
}

// latenessPauseUntilDue runs the re-created pause-until-head-is-due
// consumer with the same recording handler.
func (e *env) latenessPauseUntilDue(ctx context.Context, prefix string) (*lateness, window, error) {
	t, err := e.newTopics(ctx, prefix)
	if err != nil {
		return nil, window{}, err
	}
	lat := &lateness{}
	var warmed sync.WaitGroup
	warmed.Add(1)
	var warmOnce sync.Once
	handle := baseline.PauseUntilDue(dueOf, func(_ context.Context, msg kafka.Message) error {
		now := time.Now()
		if strings.HasPrefix(string(msg.Key), "warmup") {
			warmOnce.Do(warmed.Done)
			return nil
		}
		lat.add(now.Sub(dueOf(msg)))
		return nil
	})
	bg := goRun(ctx, baseline.PartitionListeners{Kafka: e.kafka, Topic: t.Retry, Partitions: partitions(t.Retry), Handle: handle}.Run)
	defer bg.stop()

	// The listeners are up once they handled a first record.
	warm, err := retryRecord("warmup-"+prefix+"-00", time.Now(), time.Now(), 0)
	if err != nil {
		return nil, window{}, err
	}
	if err := e.produce(ctx, t.Retry, []kafka.Message{warm}); err != nil {
		return nil, window{}, err
	}
	warmDone := make(chan struct{})
	go func() { warmed.Wait(); close(warmDone) }()
	select {
	case <-warmDone:
	case <-time.After(time.Minute):
		return nil, window{}, fmt.Errorf("warm-up record not handled after a minute (listeners: %v)", bg.failed())
	}

	w, err := e.timeRetries(ctx, prefix, t.Retry, lat, bg)
	if err != nil {
		return nil, window{}, err
	}
	return lat, w, bg.stop()
}

// latenessOrderRetry runs order-retry in this process and measures, at the
// inventory mock, when each retry's call arrives.
func (e *env) latenessOrderRetry(ctx context.Context, prefix string) (*lateness, map[string]float64, window, error) {
	t, err := e.newTopics(ctx, prefix)
	if err != nil {
		return nil, nil, window{}, err
	}
	db, err := e.database(ctx, prefix)
	if err != nil {
		return nil, nil, window{}, err
	}
	mock, stopMock, err := e.inventory(ctx, preset("healthy"), e.p.retries+100)
	if err != nil {
		return nil, nil, window{}, err
	}
	defer stopMock()
	group := prefix + "-order-retry"
	opsAddr, err := freeAddr()
	if err != nil {
		return nil, nil, window{}, err
	}
	environ := e.serviceEnv(t, db, "http://"+mock.Addr(), group, map[string]string{
		"REEFER_FLEET_SIZE": strconv.Itoa(e.p.retries + 100),
		"HTTP_ADDR":         opsAddr,
	})
	cfg, err := retrier.ConfigFromEnv(func(k string) string { return environ[k] })
	if err != nil {
		return nil, nil, window{}, err
	}
	svc := goRun(ctx, func(ctx context.Context) error {
		return retrier.Run(ctx, e.svcLog.With("service", "order-retry", "case", prefix), cfg)
	})
	defer svc.stop()

	warm, err := retryRecord("warmup-"+group+"-00", time.Now(), time.Now(), 0)
	if err != nil {
		return nil, nil, window{}, err
	}
	if err := e.warmUp(ctx, t.Retry, group, &warm); err != nil {
		return nil, nil, window{}, fmt.Errorf("%w (service: %v)", err, svc.failed())
	}
	sw, err := e.startWatch(prefix)
	if err != nil {
		return nil, nil, window{}, err
	}
	dues, err := e.produceDue(ctx, t.Retry, prefix)
	if err != nil {
		return nil, nil, window{}, err
	}
	if err := e.waitCommitted(ctx, group, t.Retry, e.p.maxDelay+5*time.Minute); err != nil {
		return nil, nil, window{}, fmt.Errorf("%w (service: %v)", err, svc.failed())
	}
	w := sw.stop()
	// The service's own view: its lateness histogram (scheduler start
	// minus due time, without the work before the inventory call).
	extra := map[string]float64{}
	metrics, err := scrape(ctx, opsAddr)
	if err != nil {
		return nil, nil, window{}, err
	}
	for name, q := range map[string]float64{"self_p50_le_ms": 0.5, "self_p99_le_ms": 0.99} {
		le, err := histogramBound(metrics, "order_retry_lateness_seconds", q)
		if err != nil {
			return nil, nil, window{}, err
		}
		extra[name] = le * 1000
	}
	if err := svc.stop(); err != nil {
		return nil, nil, window{}, fmt.Errorf("order-retry: %w", err)
	}

	got, err := admin.New("http://"+mock.Addr(), "").Calls(ctx, calls.Query{Route: "allocate"})
	if err != nil {
		return nil, nil, window{}, fmt.Errorf("read the mock's call log: %w", err)
	}
	lat := &lateness{}
	seen := map[string]bool{}
	for _, c := range got {
		due, ok := dues[c.OrderID]
		if !ok || seen[c.OrderID] {
			continue // the warm-up, or a second call for one order (none expected)
		}
		seen[c.OrderID] = true
		lat.add(c.Time.Sub(due))
	}
	if len(seen) != len(dues) {
		return nil, nil, window{}, fmt.Errorf("the inventory saw %d of the %d retried orders", len(seen), len(dues))
	}
	dead, err := e.count(ctx, t.DLQ)
	if err != nil {
		return nil, nil, window{}, err
	}
	extra["dead_letters"] = float64(dead)
	return lat, extra, w, nil
}
