package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/reeferdlq/reefer-dlq/bench/baseline"
	"github.com/reeferdlq/reefer-dlq/bench/report"
	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/failure"
	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/retrymeta"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/allocation"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/events"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/inventory"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/reeferstore"
	"github.com/reeferdlq/reefer-dlq/services/container-inventory-mock/inventorymock/admin"
	"github.com/reeferdlq/reefer-dlq/services/container-inventory-mock/inventorymock/calls"
	"github.com/reeferdlq/reefer-dlq/services/container-inventory-mock/inventorymock/faults"
	"github.com/reeferdlq/reefer-dlq/services/order-retry/retrier"
	"github.com/reeferdlq/reefer-dlq/services/reefer-manager/manager"
)

// Case 9 puts the question "why not just use share groups?" to numbers.
// The same workloads run through two designs, on the same broker, database,
// inventory mock and machine, one after the other:
//
//   - the suite: reefer-manager and order-retry in this process, as cases 3,
//     4 and 6 run them: a failed order goes to order-retries with a due
//     time (back-off 1 s × 2ⁿ ±10 %), order-retry runs it when due, and
//     after 5 attempts writes it to order-dead-letter;
//   - a share group (KIP-932) consumer written as franz-go documents it
//     (baseline.ShareGroupConsumer): ACCEPT on success, RELEASE on a
//     transient failure, REJECT on a permanent one, the delivery count limit
//     (5, kfake's and Kafka's default) as the attempt budget. The devbroker
//     is kfake, which emulates share groups; it has no share-group DLQ
//     (KIP-1191), so the consumer writes the dead letter itself.
//
// Both do the same work per order: the Postgres allocation
// (reeferstore, one statement per order, as order-retry does), the
// inventory call through pkg/reefer/inventory (same timeout, same circuit
// breaker, same failure classes), and the two success events.
//
// The workloads: healthy (the reference input rate), a 30 %-flaky
// inventory (503 on 30 % of calls, seeded), and an outage (503 on every
// call) longer than the suite's retry budget, then recovery.

// shareDeliveryLimit is group.share.delivery.count.limit: Kafka's default
// and kfake's, and the suite's RETRY_MAX_ATTEMPTS.
const shareDeliveryLimit = 5

// shareMembers and shareConcurrency: the share group runs as shareMembers
// consumers (share groups scale by adding members, also beyond the
// partition count), each processing up to shareConcurrency records of a
// poll at once: together reefer-manager's MAX_IN_FLIGHT.
const (
	shareMembers     = 4
	shareConcurrency = 64
)

// ordersPerKey is how many consecutive orders of the flaky workload share
// a record key, so that per-key order can be checked.
const ordersPerKey = 4

// design is one side of case 9, deployed for one workload.
type design struct {
	name   string
	t      topics
	mock   *admin.Client
	policy string
	// takenIn reports whether every order produced so far (n, warm-up
	// excluded) has left the input: handed off or concluded (the suite),
	// or acknowledged for good (the share group).
	takenIn func(ctx context.Context, n int) (bool, error)
	// firstFailure returns when the design saw an order fail first, from
	// its dead letter when it records it there (the suite) or from the
	// bench's observation (the share group).
	firstFailure func(orderID string, dead kafka.Message) (time.Time, bool)
	// deadLetteredAt is when a dead letter was written.
	deadLetteredAt func(dead kafka.Message) time.Time
	// failedAttempts returns when attempts failed between from and to.
	failedAttempts func(ctx context.Context, from, to time.Time) ([]time.Time, error)
	// concludedBase is the conclusions (success events and dead letters)
	// of the warm-up records.
	concludedBase int64
	// stop stops the design; release then stops the mock, whose call log
	// is read in between.
	stop    func() error
	release func()
}

// shutdown stops the design and the mock.
func (d *design) shutdown() {
	_ = d.stop()
	d.release()
}

// concluded returns the orders concluded so far, warm-ups excluded: a
// ContainerAssignedToOrder event or a dead letter each.
func (d *design) concluded(ctx context.Context, e *env) (int64, error) {
	ok, err := e.count(ctx, d.t.Containers)
	if err != nil {
		return 0, err
	}
	dead, err := e.count(ctx, d.t.DLQ)
	if err != nil {
		return 0, err
	}
	return ok + dead - d.concludedBase, nil
}

// waitConcluded waits until n orders are concluded.
func (d *design) waitConcluded(ctx context.Context, e *env, n int, timeout time.Duration) error {
	return waitUntil(ctx, timeout, fmt.Sprintf("%s: %d orders concluded", d.name, n), func() (bool, error) {
		got, err := d.concluded(ctx, e)
		return got >= int64(n), err
	})
}

// deploy starts one design for one workload against a fresh mock with
// profile.
type deployFunc func(ctx context.Context, prefix string, profile faults.Profile, fleet int) (*design, error)

// caseShareGroups is case 9.
func caseShareGroups(ctx context.Context, e *env) ([]report.Row, error) {
	var rows []report.Row
	for _, side := range []struct {
		key, name string
		deploy    deployFunc
	}{
		{"suite", "retry topics (reefer-manager + order-retry)", e.deploySuite},
		{"share", "share group (franz-go, RELEASE/REJECT)", e.deployShareGroup},
	} {
		for _, run := range []struct {
			suffix, name string
			measure      func(context.Context, string, deployFunc) (report.Row, error)
		}{
			{"healthy", "healthy inventory: input orders/s", e.shareHealthy},
			{"flaky", "30 %-flaky inventory: first-retry gap p50 (ms)", e.shareFlaky},
			{"outage", "inventory outage: input orders/s while it is down", e.shareOutage},
		} {
			row, err := run.measure(ctx, "c9"+side.key[:2]+run.suffix[:1], side.deploy)
			if err != nil {
				return rows, fmt.Errorf("%s, %s: %w", side.key, run.suffix, err)
			}
			row.Case, row.Key = "9", "9-"+side.key+"-"+run.suffix
			row.Name = side.name + ", " + run.name
			if run.suffix == "outage" {
				row.RatioTo = []string{"9-" + side.key + "-healthy"}
				if side.key == "suite" {
					row.Goals = []report.Goal{{Metric: report.MetricRatio, Op: ">=", Target: 0.9}}
				}
			}
			rows = append(rows, row)
		}
	}

	// The share group once more, its inventory client without the circuit
	// breaker: a consumer written from the share-group documentation alone
	// has none, and the breaker is what hid the retry storm from the
	// inventory above.
	out, err := e.shareOutage(ctx, "c9sno", func(ctx context.Context, prefix string, profile faults.Profile, fleet int) (*design, error) {
		return e.deployShareGroupWith(ctx, prefix, profile, fleet, false)
	})
	if err != nil {
		return rows, fmt.Errorf("share, no breaker, outage: %w", err)
	}
	out.Case, out.Key = "9", "9-share-outage-nobreaker"
	out.Name = "share group, no circuit breaker, inventory outage: input orders/s while it is down"
	out.RatioTo = []string{"9-share-healthy"}
	rows = append(rows, out)
	return rows, nil
}

// shareHealthy measures a design's input rate with a healthy inventory.
func (e *env) shareHealthy(ctx context.Context, prefix string, deploy deployFunc) (report.Row, error) {
	n := e.p.shareOrders
	d, err := deploy(ctx, prefix, preset("healthy"), n)
	if err != nil {
		return report.Row{}, err
	}
	defer d.shutdown()
	msgs, err := keyedOrders(prefix, n, 1)
	if err != nil {
		return report.Row{}, err
	}
	w, err := e.takeIn(ctx, d, prefix, msgs)
	if err != nil {
		return report.Row{}, err
	}
	if err := d.waitConcluded(ctx, e, n, 5*time.Minute); err != nil {
		return report.Row{}, err
	}
	dead, err := e.count(ctx, d.t.DLQ)
	if err != nil {
		return report.Row{}, err
	}
	if err := d.stop(); err != nil {
		return report.Row{}, err
	}
	return report.Row{
		Params: fmt.Sprintf("%d orders, healthy inventory; %s", n, d.policy),
		Value:  round(float64(n)/w.Elapsed.Seconds(), 0), Unit: "orders/s",
		Metrics: w.metrics(map[string]float64{"dead_letters": float64(dead)}),
	}, nil
}

// shareFlaky runs the flaky workload: how retries are spaced and whether
// each key's orders conclude in order.
func (e *env) shareFlaky(ctx context.Context, prefix string, deploy deployFunc) (report.Row, error) {
	n := e.p.flakyOrders
	seed := int64(9)
	profile := faults.Profile{Seed: &seed, ErrorRate: 0.3, ErrorStatus: 503, Routes: []string{faults.RouteAllocate}}
	d, err := deploy(ctx, prefix, profile, n)
	if err != nil {
		return report.Row{}, err
	}
	defer d.shutdown()
	msgs, err := keyedOrders(prefix, n, ordersPerKey)
	if err != nil {
		return report.Row{}, err
	}
	sw, err := e.startWatch(prefix)
	if err != nil {
		return report.Row{}, err
	}
	if err := e.produce(ctx, d.t.Orders, msgs); err != nil {
		return report.Row{}, err
	}
	if err := d.waitConcluded(ctx, e, n, 10*time.Minute); err != nil {
		return report.Row{}, err
	}
	w := sw.stop()
	if err := d.stop(); err != nil {
		return report.Row{}, err
	}
	byOrder, err := callsByOrder(ctx, d.mock, prefix)
	if err != nil {
		return report.Row{}, err
	}
	m := retrySpacing(byOrder, e.p.retryBase)
	maps.Copy(m, orderingViolations(byOrder, n))
	if strings.HasPrefix(d.name, "suite") {
		late, err := e.suiteLateness(ctx, d.t.Retry, byOrder)
		if err != nil {
			return report.Row{}, err
		}
		maps.Copy(m, late)
	}
	dead, err := e.count(ctx, d.t.DLQ)
	if err != nil {
		return report.Row{}, err
	}
	m["dead_letters"] = float64(dead)
	m["orders_per_s"] = round(float64(n)/w.Elapsed.Seconds(), 0)
	return report.Row{
		Params: fmt.Sprintf("%d orders, %d consecutive orders per record key; the inventory answers 503 to 30 %% of allocation calls (seed %d); %s; gaps between one order's inventory calls, at the mock; intended first retry %s (±10 %%); an ordering violation is a pair of consecutive orders of one key whose successful calls came in the other order",
			n, ordersPerKey, seed, d.policy, e.p.retryBase),
		Value: m["retry_gap_p50_ms"], Unit: "ms",
		Metrics: w.metrics(m),
	}, nil
}

// shareOutage runs the outage workload: the inventory down for longer than
// the suite's retry budget, the orders produced as it starts, then
// recovery and a second batch of orders.
func (e *env) shareOutage(ctx context.Context, prefix string, deploy deployFunc) (report.Row, error) {
	n, recovery := e.p.shareOrders, e.p.recoveryOrders
	d, err := deploy(ctx, prefix, preset("healthy"), n+recovery)
	if err != nil {
		return report.Row{}, err
	}
	defer d.shutdown()
	msgs, err := keyedOrders(prefix, n, 1)
	if err != nil {
		return report.Row{}, err
	}
	after, err := keyedOrders(prefix+"-r", recovery, 1)
	if err != nil {
		return report.Row{}, err
	}

	if _, err := d.mock.SetFaults(ctx, preset("outage")); err != nil {
		return report.Row{}, fmt.Errorf("start the outage: %w", err)
	}
	down := time.Now()
	w, err := e.takeIn(ctx, d, prefix, msgs)
	if err != nil {
		return report.Row{}, err
	}
	select {
	case <-time.After(time.Until(down.Add(e.p.outageFor))):
	case <-ctx.Done():
		return report.Row{}, ctx.Err()
	}
	if _, err := d.mock.Heal(ctx); err != nil {
		return report.Row{}, fmt.Errorf("end the outage: %w", err)
	}
	up := time.Now()
	deadInOutage, err := e.count(ctx, d.t.DLQ)
	if err != nil {
		return report.Row{}, err
	}
	if err := e.produce(ctx, d.t.Orders, after); err != nil {
		return report.Row{}, err
	}
	if err := d.waitConcluded(ctx, e, n+recovery, 10*time.Minute); err != nil {
		return report.Row{}, err
	}
	recovered := time.Since(up)
	if err := d.stop(); err != nil {
		return report.Row{}, err
	}

	all, err := d.mock.Calls(ctx, calls.Query{Route: faults.RouteAllocate})
	if err != nil {
		return report.Row{}, fmt.Errorf("read the mock's call log: %w", err)
	}
	inOutage := 0
	for _, c := range all {
		if !c.Time.Before(down) && c.Time.Before(up) {
			inOutage++
		}
	}
	outage := up.Sub(down).Seconds()
	failed, err := d.failedAttempts(ctx, down, up)
	if err != nil {
		return report.Row{}, err
	}
	deadLetters, err := e.readAll(ctx, d.t.DLQ)
	if err != nil {
		return report.Row{}, err
	}
	var toDead []time.Duration
	headers := map[string]bool{}
	recoveredDead := 0
	for _, m := range deadLetters {
		for _, h := range m.Headers {
			headers[h.Key] = true
		}
		_, order, err := events.DecodeOrderCreated(m.Value)
		if err != nil {
			return report.Row{}, fmt.Errorf("dead letter %s/%d: %w", d.t.DLQ, m.Offset, err)
		}
		if strings.HasPrefix(order.OrderID, prefix+"-r-") {
			recoveredDead++
			continue
		}
		if first, ok := d.firstFailure(order.OrderID, m); ok {
			toDead = append(toDead, d.deadLetteredAt(m).Sub(first))
		}
	}
	if len(toDead) == 0 && deadInOutage > 0 {
		return report.Row{}, errors.New("no dead letter says when its order first failed")
	}
	slices.Sort(toDead)
	ms := func(p float64) float64 {
		if len(toDead) == 0 {
			return 0
		}
		return round(float64(toDead[min(len(toDead)-1, int(p*float64(len(toDead))))])/float64(time.Millisecond), 1)
	}
	keys := slices.Sorted(maps.Keys(headers))
	metrics := w.metrics(map[string]float64{
		"outage_s":                   round(outage, 2),
		"inventory_calls_per_s":      round(float64(inOutage)/outage, 1),
		"failed_attempts_per_s":      round(float64(len(failed))/outage, 1),
		"failed_attempts_peak_per_s": float64(peakPerSecond(failed, down)),
		"failed_attempts_90pct_s":    round(spanOf(failed, down, 0.9).Seconds(), 2),
		"dead_letters":               float64(len(deadLetters) - recoveredDead),
		"dead_in_outage":             float64(deadInOutage),
		"to_dead_letter_p50_ms":      ms(0.5),
		"to_dead_letter_max_ms":      ms(1),
		"recovery_orders":            float64(recovery),
		"recovery_dead_letters":      float64(recoveredDead),
		"recovery_all_concluded_s":   round(recovered.Seconds(), 2),
		"dead_letter_headers":        float64(len(keys)),
	})
	return report.Row{
		Params: fmt.Sprintf("%d orders produced as the inventory goes down (503 on every call), down for %s, then healed and %d more orders; %s; the input rate is the orders taken in while the inventory is down",
			n, e.p.outageFor, recovery, d.policy),
		Value: round(float64(n)/w.Elapsed.Seconds(), 0), Unit: "orders/s",
		Metrics: metrics,
		Note:    "dead-letter headers: " + strings.Join(keys, ", "),
	}, nil
}

// peakPerSecond is the most events in one second, counted in whole
// seconds from start.
func peakPerSecond(ts []time.Time, start time.Time) int {
	buckets := map[int64]int{}
	peak := 0
	for _, t := range ts {
		b := int64(t.Sub(start) / time.Second)
		buckets[b]++
		peak = max(peak, buckets[b])
	}
	return peak
}

// spanOf is how long after start a share q of the events had happened.
func spanOf(ts []time.Time, start time.Time, q float64) time.Duration {
	if len(ts) == 0 {
		return 0
	}
	s := slices.Clone(ts)
	slices.SortFunc(s, func(a, b time.Time) int { return a.Compare(b) })
	return s[min(len(s)-1, int(q*float64(len(s))))].Sub(start)
}

// keyedOrders builds n orders named prefix-0000000..., perKey consecutive
// orders sharing a record key (prefix-k-00000...).
func keyedOrders(prefix string, n, perKey int) ([]kafka.Message, error) {
	msgs, err := orderRecords(prefix, n)
	if err != nil {
		return nil, err
	}
	if perKey > 1 {
		for i := range msgs {
			msgs[i].Key = fmt.Appendf(nil, "%s-k-%06d", prefix, i/perKey)
		}
	}
	return msgs, nil
}

// callsByOrder returns the mock's allocation calls per order of prefix,
// oldest first.
func callsByOrder(ctx context.Context, mock *admin.Client, prefix string) (map[string][]calls.Call, error) {
	all, err := mock.Calls(ctx, calls.Query{Route: faults.RouteAllocate})
	if err != nil {
		return nil, fmt.Errorf("read the mock's call log: %w", err)
	}
	out := map[string][]calls.Call{}
	for _, c := range all {
		if strings.HasPrefix(c.OrderID, prefix+"-") {
			out[c.OrderID] = append(out[c.OrderID], c)
		}
	}
	return out, nil
}

// retrySpacing measures the gaps between an order's consecutive inventory
// calls against the suite's back-off (base × 2ⁿ, ±10 %): early is the share
// of retries that came before the back-off's earliest time.
func retrySpacing(byOrder map[string][]calls.Call, base time.Duration) map[string]float64 {
	var first []time.Duration
	retries, early := 0, 0
	for _, cs := range byOrder {
		for j := 1; j < len(cs); j++ {
			gap := cs[j].Time.Sub(cs[j-1].Time)
			intended := base << (j - 1)
			retries++
			if float64(gap) < 0.9*float64(intended) {
				early++
			}
			if j == 1 {
				first = append(first, gap)
			}
		}
	}
	slices.Sort(first)
	pct := func(p float64) float64 {
		if len(first) == 0 {
			return 0
		}
		return round(float64(first[min(len(first)-1, int(p*float64(len(first))))])/float64(time.Millisecond), 2)
	}
	m := map[string]float64{
		"retries":          float64(retries),
		"retry_gap_p50_ms": pct(0.5),
		"retry_gap_p99_ms": pct(0.99),
		"intended_gap_ms":  float64(base / time.Millisecond),
		"early_retries":    float64(early),
	}
	if retries > 0 {
		m["early_share"] = round(float64(early)/float64(retries), 3)
	}
	return m
}

// orderingViolations counts the pairs of consecutive orders of one key
// (orders i and i+1 of keyedOrders with ordersPerKey) whose successful
// inventory calls, or whose first calls, came in the other order.
func orderingViolations(byOrder map[string][]calls.Call, n int) map[string]float64 {
	ids := slices.Sorted(maps.Keys(byOrder))
	success := func(cs []calls.Call) (time.Time, bool) {
		for _, c := range cs {
			if c.Status >= 200 && c.Status < 300 {
				return c.Time, true
			}
		}
		return time.Time{}, false
	}
	pairs, bySuccess, byFirst := 0, 0, 0
	for i := 0; i+1 < len(ids); i++ {
		a, b := ids[i], ids[i+1]
		na, errA := strconv.Atoi(a[strings.LastIndexByte(a, '-')+1:])
		nb, errB := strconv.Atoi(b[strings.LastIndexByte(b, '-')+1:])
		if errA != nil || errB != nil || nb != na+1 || na/ordersPerKey != nb/ordersPerKey {
			continue
		}
		pairs++
		if byOrder[a][0].Time.After(byOrder[b][0].Time) {
			byFirst++
		}
		ta, okA := success(byOrder[a])
		tb, okB := success(byOrder[b])
		if okA && okB && ta.After(tb) {
			bySuccess++
		}
	}
	return map[string]float64{
		"key_pairs":                      float64(pairs),
		"ordering_violations":            float64(bySuccess),
		"first_attempt_order_violations": float64(byFirst),
		"orders_without_inventory_call":  float64(n - len(byOrder)),
	}
}

// suiteLateness joins each retry's inventory call with its retry record:
// how late after x-retry-due-at the call came.
func (e *env) suiteLateness(ctx context.Context, retryTopic string, byOrder map[string][]calls.Call) (map[string]float64, error) {
	retries, err := e.readAll(ctx, retryTopic)
	if err != nil {
		return nil, err
	}
	lat := &lateness{}
	for _, m := range retries {
		meta, err := retrymeta.Parse(m.Headers)
		if err != nil {
			continue
		}
		_, order, err := events.DecodeOrderCreated(m.Value)
		if err != nil {
			continue
		}
		cs := byOrder[order.OrderID]
		// Call k (from 0) is attempt k+1; the record with x-retry-attempt
		// a is due when attempt a+1, call a, starts.
		if meta.Attempt < len(cs) {
			lat.add(cs[meta.Attempt].Time.Sub(meta.DueAt))
		}
	}
	s := lat.summary()
	return map[string]float64{
		"lateness_p50_ms": s["p50_ms"], "lateness_p99_ms": s["p99_ms"], "lateness_early": s["early"],
	}, nil
}

// readAll reads every record of topic (the run's topics start empty).
func (e *env) readAll(ctx context.Context, topic string) ([]kafka.Message, error) {
	c, closeClient, err := e.client()
	if err != nil {
		return nil, err
	}
	defer closeClient()
	end, err := ends(ctx, c, topic)
	if err != nil {
		return nil, err
	}
	var out []kafka.Message
	for p, last := range end {
		if last == 0 {
			continue
		}
		r, err := e.kafka.NewReader(kafka.ReaderConfig{Topic: topic, Partition: p, MaxWait: 100 * time.Millisecond})
		if err != nil {
			return nil, err
		}
		rctx, cancel := context.WithTimeout(ctx, time.Minute)
		for {
			m, err := r.ReadMessage(rctx)
			if err != nil {
				cancel()
				r.Close()
				return nil, fmt.Errorf("read %s/%d: %w", topic, p, err)
			}
			out = append(out, m)
			if m.Offset >= last-1 {
				break
			}
		}
		cancel()
		r.Close()
	}
	return out, nil
}

// deploySuite starts reefer-manager and order-retry for one workload.
func (e *env) deploySuite(ctx context.Context, prefix string, profile faults.Profile, fleet int) (*design, error) {
	t, err := e.newTopics(ctx, prefix)
	if err != nil {
		return nil, err
	}
	db, err := e.database(ctx, prefix)
	if err != nil {
		return nil, err
	}
	mock, stopMock, err := e.inventory(ctx, profile, 10*fleet+10000)
	if err != nil {
		return nil, err
	}
	var svcs []*background
	stop := func() error {
		var errs []error
		for _, s := range slices.Backward(svcs) {
			errs = append(errs, s.stop())
		}
		return errors.Join(errs...)
	}
	d := &design{
		name: "suite", t: t, mock: admin.New("http://"+mock.Addr(), ""),
		policy: fmt.Sprintf("reefer-manager (MAX_IN_FLIGHT %d) and order-retry in process, back-off %s × 2ⁿ ±10 %%, 5 attempts", e.p.inFlight, e.p.retryBase),
	}
	once := sync.OnceValue(stop)
	d.stop, d.release = once, sync.OnceFunc(stopMock)
	fail := func(err error) (*design, error) { d.shutdown(); return nil, err }
	own := map[string]string{
		"REEFER_FLEET_SIZE": strconv.Itoa(fleet + 100),
		"RETRY_BASE_DELAY":  e.p.retryBase.String(),
	}
	mgrGroup, retryGroup := prefix+"-reefer-manager", prefix+"-order-retry"
	mgrEnv := e.serviceEnv(t, db, "http://"+mock.Addr(), mgrGroup, own)
	mgrCfg, err := manager.ConfigFromEnv(func(k string) string { return mgrEnv[k] })
	if err != nil {
		return fail(err)
	}
	retryEnv := e.serviceEnv(t, db, "http://"+mock.Addr(), retryGroup, own)
	retryCfg, err := retrier.ConfigFromEnv(func(k string) string { return retryEnv[k] })
	if err != nil {
		return fail(err)
	}
	svcs = append(svcs,
		goRun(ctx, func(ctx context.Context) error {
			return manager.Run(ctx, e.svcLog.With("service", "reefer-manager", "case", prefix), mgrCfg)
		}),
		goRun(ctx, func(ctx context.Context) error {
			return retrier.Run(ctx, e.svcLog.With("service", "order-retry", "case", prefix), retryCfg)
		}))
	if err := e.warmUp(ctx, t.Orders, mgrGroup, nil); err != nil {
		return fail(fmt.Errorf("%w (reefer-manager: %v)", err, svcs[0].failed()))
	}
	warm, err := retryRecord("warmup-"+retryGroup+"-00", time.Now(), time.Now(), 0)
	if err != nil {
		return fail(err)
	}
	if err := e.warmUp(ctx, t.Retry, retryGroup, &warm); err != nil {
		return fail(fmt.Errorf("%w (order-retry: %v)", err, svcs[1].failed()))
	}
	if d.concludedBase, err = d.concluded(ctx, e); err != nil {
		return fail(err)
	}
	d.takenIn = func(ctx context.Context, _ int) (bool, error) {
		c, closeClient, err := e.client()
		if err != nil {
			return false, err
		}
		defer closeClient()
		end, err := ends(ctx, c, t.Orders)
		if err != nil {
			return false, err
		}
		com, err := committed(ctx, c, mgrGroup, t.Orders)
		if err != nil {
			return false, err
		}
		return allCommitted(end, com), nil
	}
	d.firstFailure = func(_ string, dead kafka.Message) (time.Time, bool) {
		meta, err := retrymeta.Parse(dead.Headers)
		return meta.FirstFailureAt, err == nil && !meta.FirstFailureAt.IsZero()
	}
	d.deadLetteredAt = func(dead kafka.Message) time.Time {
		if meta, err := retrymeta.Parse(dead.Headers); err == nil && !meta.DeadLetteredAt.IsZero() {
			return meta.DeadLetteredAt
		}
		return dead.Time
	}
	// A failed attempt of the suite writes one record: to the retry topic,
	// or the dead letter after the last.
	d.failedAttempts = func(ctx context.Context, from, to time.Time) ([]time.Time, error) {
		var out []time.Time
		for _, topic := range []string{t.Retry, t.DLQ} {
			msgs, err := e.readAll(ctx, topic)
			if err != nil {
				return nil, err
			}
			for _, m := range msgs {
				if !m.Time.Before(from) && m.Time.Before(to) {
					out = append(out, m.Time)
				}
			}
		}
		return out, nil
	}
	return d, nil
}

// shareObserver records what the share-group consumer did, for the
// measurements.
type shareObserver struct {
	mu           sync.Mutex
	firstFailure map[string]time.Time // order id -> first failed delivery
	failures     []time.Time          // every failed delivery
	final        map[string]bool      // order ids acknowledged for good
	maxDelivery  int32
}

func (o *shareObserver) observe(r *kgo.Record, err error, ack kgo.AckStatus, at time.Time) {
	id := orderIDOf(r.Value)
	o.mu.Lock()
	defer o.mu.Unlock()
	o.maxDelivery = max(o.maxDelivery, r.DeliveryCount())
	if err != nil {
		o.failures = append(o.failures, at)
		if _, ok := o.firstFailure[id]; !ok {
			o.firstFailure[id] = at
		}
	}
	if ack != kgo.AckRelease && id != "" {
		o.final[id] = true
	}
}

func (o *shareObserver) finalCount(prefix string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := 0
	for id := range o.final {
		if !strings.HasPrefix(id, "warmup") && strings.HasPrefix(id, prefix) {
			n++
		}
	}
	return n
}

// orderIDOf returns the order id of an OrderCreated value; "" for other
// events (the consumer's own success events).
func orderIDOf(value []byte) string {
	_, order, err := events.DecodeOrderCreated(value)
	if err != nil {
		return ""
	}
	return order.OrderID
}

// deployShareGroup starts the share-group consumer for one workload, with
// the suite's inventory client.
func (e *env) deployShareGroup(ctx context.Context, prefix string, profile faults.Profile, fleet int) (*design, error) {
	return e.deployShareGroupWith(ctx, prefix, profile, fleet, true)
}

// deployShareGroupWith starts the share-group consumer; without breaker,
// its inventory client's circuit breaker never opens.
func (e *env) deployShareGroupWith(ctx context.Context, prefix string, profile faults.Profile, fleet int, breaker bool) (*design, error) {
	t, err := e.newTopics(ctx, prefix)
	if err != nil {
		return nil, err
	}
	db, err := e.database(ctx, prefix)
	if err != nil {
		return nil, err
	}
	store, err := reeferstore.Open(ctx, db, e.svcLog)
	if err != nil {
		return nil, err
	}
	var closers []func() error
	stopAll := func() error {
		var errs []error
		for _, c := range slices.Backward(closers) {
			errs = append(errs, c())
		}
		return errors.Join(errs...)
	}
	once := sync.OnceValue(stopAll)
	closers = append(closers, store.Close)
	releaseMock := func() {}
	fail := func(err error) (*design, error) { once(); releaseMock(); return nil, err }
	if err := store.Migrate(ctx); err != nil {
		return fail(err)
	}
	if err := store.SeedFleet(ctx, fleet+100); err != nil {
		return fail(err)
	}
	mock, stopMock, err := e.inventory(ctx, profile, 10*shareDeliveryLimit*fleet+10000)
	if err != nil {
		return fail(err)
	}
	releaseMock = stopMock
	invCfg := inventory.Config{BaseURL: "http://" + mock.Addr(), Timeout: e.p.callTimeout}
	breakerDesc := "the suite's inventory client (circuit breaker included)"
	if !breaker {
		invCfg.Breaker = inventory.BreakerConfig{MaxFailures: math.MaxUint32, FailureRatio: -1}
		breakerDesc = "the suite's inventory client with its circuit breaker off"
	}
	inv, err := inventory.New(invCfg)
	if err != nil {
		return fail(err)
	}
	alloc := allocation.Service{Store: store, Inventory: inv}

	producer, err := kgo.NewClient(kgo.SeedBrokers(e.broker.Addr()), kgo.ClientID(prefix+"-producer"), kgo.ProducerLinger(0))
	if err != nil {
		return fail(err)
	}
	closers = append(closers, func() error { producer.Close(); return nil })
	group := prefix + "-share"
	if err := setShareAutoOffsetReset(ctx, producer, group); err != nil {
		return fail(err)
	}
	handle := func(ctx context.Context, r *kgo.Record) error {
		_, order, err := events.DecodeOrderCreated(r.Value)
		if err != nil {
			return nil // its own events, read back: nothing to do
		}
		res, err := alloc.Allocate(ctx, order)
		if err != nil {
			return err
		}
		if res.Outcome != allocation.Allocated {
			return failure.New(failure.Permanent, "rejected", errors.New(res.Reason))
		}
		now := time.Now()
		var recs []*kgo.Record
		for _, ev := range []struct {
			topic, key, typ string
			data            any
		}{
			{t.Orders, string(r.Key), events.TypeContainerAllocated, events.ContainerAllocated{OrderID: res.OrderID, ContainerID: res.ContainerID}},
			{t.Containers, res.ContainerID, events.TypeContainerAssignedToOrder, events.ContainerAssignedToOrder{ContainerID: res.ContainerID, OrderID: res.OrderID}},
		} {
			env, err := events.New("/reefer-dlq/bench-share", ev.typ, res.OrderID, ev.data, now)
			if err != nil {
				return failure.New(failure.Permanent, "encode", err)
			}
			value, err := events.Encode(env)
			if err != nil {
				return failure.New(failure.Permanent, "encode", err)
			}
			recs = append(recs, &kgo.Record{Topic: ev.topic, Key: []byte(ev.key), Value: value})
		}
		if err := producer.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			return failure.New(failure.Transient, "produce", err)
		}
		return nil
	}
	deadLetter := func(ctx context.Context, r *kgo.Record, headers []kgo.RecordHeader) error {
		return producer.ProduceSync(ctx, &kgo.Record{Topic: t.DLQ, Key: r.Key, Value: r.Value, Headers: headers}).FirstErr()
	}
	obs := &shareObserver{firstFailure: map[string]time.Time{}, final: map[string]bool{}}
	for i := range shareMembers {
		cl, err := kgo.NewClient(kgo.SeedBrokers(e.broker.Addr()), kgo.ClientID(fmt.Sprintf("%s-%d", group, i)),
			kgo.ConsumeTopics(t.Orders), kgo.ShareGroup(group), kgo.ShareMaxRecords(shareConcurrency))
		if err != nil {
			return fail(err)
		}
		bg := goRun(ctx, baseline.ShareGroupConsumer{
			Client: cl, Handle: handle, DeadLetter: deadLetter,
			MaxDeliveries: shareDeliveryLimit, Concurrency: shareConcurrency,
			Observe: obs.observe,
		}.Run)
		closers = append(closers, func() error {
			err := bg.stop()
			cl.Close() // releases what it still holds
			return err
		})
	}
	d := &design{
		name: "share group", t: t, mock: admin.New("http://"+mock.Addr(), ""), stop: once, release: sync.OnceFunc(releaseMock),
		policy: fmt.Sprintf("a share group of %d franz-go %s consumers, %d records of a poll at once each: ACCEPT, RELEASE on a transient failure, REJECT on a permanent one, delivery limit %d (the attempt budget), the consumer writes the dead letter (kfake has no KIP-1191 DLQ); %s",
			shareMembers, franzVersion, shareConcurrency, shareDeliveryLimit, breakerDesc),
	}
	// Warm-up: every member has joined once a record went through.
	warm, err := orderRecord("warmup-"+group+"-00", time.Now())
	if err != nil {
		return fail(err)
	}
	if err := e.produce(ctx, t.Orders, []kafka.Message{warm}); err != nil {
		return fail(err)
	}
	if err := waitUntil(ctx, 2*time.Minute, "share group warm-up", func() (bool, error) {
		obs.mu.Lock()
		defer obs.mu.Unlock()
		return obs.final["warmup-"+group+"-00"], nil
	}); err != nil {
		return fail(err)
	}
	if d.concludedBase, err = d.concluded(ctx, e); err != nil {
		return fail(err)
	}
	d.takenIn = func(_ context.Context, n int) (bool, error) {
		return obs.finalCount(prefix) >= n, nil
	}
	d.firstFailure = func(orderID string, _ kafka.Message) (time.Time, bool) {
		obs.mu.Lock()
		defer obs.mu.Unlock()
		t, ok := obs.firstFailure[orderID]
		return t, ok
	}
	d.deadLetteredAt = func(dead kafka.Message) time.Time { return dead.Time }
	d.failedAttempts = func(_ context.Context, from, to time.Time) ([]time.Time, error) {
		obs.mu.Lock()
		defer obs.mu.Unlock()
		var out []time.Time
		for _, at := range obs.failures {
			if !at.Before(from) && at.Before(to) {
				out = append(out, at)
			}
		}
		if obs.maxDelivery > shareDeliveryLimit {
			return nil, fmt.Errorf("a record was delivered %d times, more than the limit %d", obs.maxDelivery, shareDeliveryLimit)
		}
		return out, nil
	}
	return d, nil
}

// franzVersion is the franz-go version bench/go.mod pins.
const franzVersion = "v1.22.3"

// setShareAutoOffsetReset makes the group start at the earliest offset,
// as franz-go's documentation of kgo.ShareGroup asks for topics that
// already hold records (the default, latest, skips them).
func setShareAutoOffsetReset(ctx context.Context, cl *kgo.Client, group string) error {
	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	res := kmsg.NewIncrementalAlterConfigsRequestResource()
	res.ResourceType = kmsg.ConfigResourceTypeGroupConfig
	res.ResourceName = group
	cfg := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
	cfg.Name = "share.auto.offset.reset"
	cfg.Value = kmsg.StringPtr("earliest")
	res.Configs = append(res.Configs, cfg)
	req.Resources = append(req.Resources, res)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return fmt.Errorf("share.auto.offset.reset of %s: %w", group, err)
	}
	for _, r := range resp.Resources {
		if r.ErrorCode != 0 {
			return fmt.Errorf("share.auto.offset.reset of %s: error code %d", group, r.ErrorCode)
		}
	}
	return nil
}

// takeIn produces msgs to d's orders topic and measures the window until
// d has taken every one of them in.
func (e *env) takeIn(ctx context.Context, d *design, prefix string, msgs []kafka.Message) (window, error) {
	sw, err := e.startWatch(prefix)
	if err != nil {
		return window{}, err
	}
	if err := e.produce(ctx, d.t.Orders, msgs); err != nil {
		return window{}, err
	}
	n := len(msgs)
	if err := waitUntil(ctx, 10*time.Minute, d.name+": orders taken in", func() (bool, error) { return d.takenIn(ctx, n) }); err != nil {
		return window{}, err
	}
	return sw.stop(), nil
}
