package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"strconv"
	"time"

	"github.com/reeferdlq/reefer-dlq/bench/report"
	"github.com/reeferdlq/reefer-dlq/services/container-inventory-mock/inventorymock/admin"
	"github.com/reeferdlq/reefer-dlq/services/container-inventory-mock/inventorymock/faults"
	"github.com/reeferdlq/reefer-dlq/services/reefer-manager/manager"
)

// caseHealthy is case 3: reefer-manager as main runs it, in this process,
// with every dependency healthy: each order is allocated in Postgres,
// announced to the inventory and concluded with two events.
//
// It runs a second time with tracing on at 100% sampling (3-traced), the
// spans exported by OTLP/HTTP to an in-process collector that reads and
// drops them: the ratio of the two is tracing's cost. Case 3 itself runs
// with tracing off (no OTEL_EXPORTER_OTLP_ENDPOINT), which costs one type
// check per record and per write (tracing.Off).
func caseHealthy(ctx context.Context, e *env) ([]report.Row, error) {
	w, err := e.runManager(ctx, "c3", preset("healthy"), nil)
	if err != nil {
		return nil, err
	}
	collector := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		rw.Header().Set("Content-Type", "application/x-protobuf")
	}))
	defer collector.Close()
	traced, err := e.runManager(ctx, "c3t", preset("healthy"), map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT": collector.URL,
		"OTEL_TRACES_SAMPLER":         "always_on",
	})
	if err != nil {
		return nil, fmt.Errorf("traced: %w", err)
	}
	return []report.Row{{
		Case: "3", Key: "3", Name: "reefer-manager, healthy: orders/s end to end",
		Params: fmt.Sprintf("%d orders; reefer-manager in process, MAX_IN_FLIGHT=%d, COMMIT_MODE=after-handoff; each order: Postgres allocation, inventory PUT, ContainerAllocated + ContainerAssignedToOrder written, its own event read back and skipped", e.p.orders, e.p.inFlight),
		Value:  round(float64(e.p.orders)/w.Elapsed.Seconds(), 0), Unit: "orders/s",
		Metrics: w.metrics(nil),
		RatioTo: []string{"2-db", "2-inv"},
		Goals: []report.Goal{
			{Metric: report.MetricValue, Op: ">=", Target: 5000},
			{Metric: report.MetricRatio, Op: ">=", Target: 0.7},
		},
	}, {
		Case: "3", Key: "3-traced", Name: "reefer-manager, healthy, tracing on: orders/s end to end",
		Params: fmt.Sprintf("%d orders, as case 3, with OTEL_TRACES_SAMPLER=always_on and every span exported by OTLP/HTTP (protobuf) to an in-process collector: about eight spans per order", e.p.orders),
		Value:  round(float64(e.p.orders)/traced.Elapsed.Seconds(), 0), Unit: "orders/s",
		Metrics: traced.metrics(nil),
		RatioTo: []string{"3"},
		Goals:   []report.Goal{{Metric: report.MetricRatio, Op: ">=", Target: 0.85}},
	}}, nil
}

// caseInventoryDown is case 4: the same, with the inventory down, once
// answering 503 and once holding every call until the client's timeout.
// The pattern's promise: the input rate does not fall, because a failed
// order is handed to the retry topic instead of being retried in place.
func caseInventoryDown(ctx context.Context, e *env) ([]report.Row, error) {
	var rows []report.Row
	for _, o := range outages(e.p) {
		w, err := e.runManager(ctx, "c4-"+o.key, o.profile, o.env)
		if err != nil {
			return rows, fmt.Errorf("%s: %w", o.key, err)
		}
		rows = append(rows, report.Row{
			Case: "4", Key: "4-" + o.key, Name: "reefer-manager, inventory down (" + o.name + "): input orders/s",
			Params: fmt.Sprintf("%d orders, as case 3, the inventory %s; every order is allocated in Postgres, fails at the inventory and is handed to order-retries (attempt 1)", e.p.orders, o.desc),
			Value:  round(float64(e.p.orders)/w.Elapsed.Seconds(), 0), Unit: "orders/s",
			Metrics: w.metrics(nil),
			RatioTo: []string{"3"},
			Goals:   []report.Goal{{Metric: report.MetricRatio, Op: ">=", Target: 0.9}},
			Note:    o.note,
		})
	}
	return rows, nil
}

// warmUpOrders are allocated before a case's window opens, with a
// healthy inventory: enough for the inventory client to learn its pace.
const warmUpOrders = 30

// outage is one way the inventory is down.
type outage struct {
	key, name, desc string
	profile         faults.Profile
	env             map[string]string // added to the service's environment
	note            string
}

func outages(p params) []outage {
	return []outage{
		{key: "503", name: "503", desc: "answering every call 503 (the mock's outage preset)", profile: preset("outage"),
			note: "after 5 failures the client's circuit breaker opens and later calls fail at once"},
		{key: "hang", name: "hang", profile: hangProfile(),
			desc: fmt.Sprintf("holding every call until the client gives up (INVENTORY_TIMEOUT=%s)", p.inventoryTimeout),
			note: "10 calls in flight past the slow-call threshold (its 500 ms floor against this healthy mock) fail every call in flight at once and open the breaker"},
		{key: "hang-notrip", name: "hang, slow-call trip off", profile: hangProfile(),
			env:  map[string]string{"INVENTORY_SLOW_CALL_FLOOR": "0s"},
			desc: fmt.Sprintf("holding every call until the client gives up (INVENTORY_TIMEOUT=%s), INVENTORY_SLOW_CALL_FLOOR=0s", p.inventoryTimeout),
			note: "without the slow-call trip: the calls in flight when the outage starts wait out the timeout before the breaker opens"},
	}
}

// runManager runs reefer-manager in this process against a fresh database,
// topics and inventory mock with profile, feeds it the case's orders and
// returns the measured window: from the first order produced until the
// group committed the last record. extra is added to the service's
// environment.
func (e *env) runManager(ctx context.Context, prefix string, profile faults.Profile, extra map[string]string) (window, error) {
	n := e.p.orders
	t, err := e.newTopics(ctx, prefix)
	if err != nil {
		return window{}, err
	}
	db, err := e.database(ctx, prefix)
	if err != nil {
		return window{}, err
	}
	down := profile.Outage != nil || profile.TimeoutRate > 0
	// An outage starts when the load does, after a healthy warm-up: as an
	// inventory that fails in production, and so that the client has
	// learnt the healthy pace (a hang is then cut by the slow-call trip,
	// not by INVENTORY_TIMEOUT).
	mock, stopMock, err := e.inventory(ctx, preset("healthy"), 0)
	if err != nil {
		return window{}, err
	}
	defer stopMock()
	group := prefix + "-reefer-manager"
	own := map[string]string{
		"REEFER_FLEET_SIZE": strconv.Itoa(n + 100),
		"INVENTORY_TIMEOUT": e.p.timeoutFor(down).String(),
	}
	maps.Copy(own, extra)
	environ := e.serviceEnv(t, db, "http://"+mock.Addr(), group, own)
	cfg, err := manager.ConfigFromEnv(func(k string) string { return environ[k] })
	if err != nil {
		return window{}, err
	}
	svc := goRun(ctx, func(ctx context.Context) error {
		return manager.Run(ctx, e.svcLog.With("service", "reefer-manager", "case", prefix), cfg)
	})
	defer svc.stop()

	msgs, err := orderRecords(prefix, n)
	if err != nil {
		return window{}, err
	}
	warm, err := orderRecords("warmup-"+prefix, warmUpOrders)
	if err != nil {
		return window{}, err
	}
	if err := e.produce(ctx, t.Orders, warm); err != nil {
		return window{}, err
	}
	if err := e.waitCommitted(ctx, group, t.Orders, 2*time.Minute); err != nil {
		return window{}, fmt.Errorf("warm-up: %w (service: %v)", err, svc.failed())
	}
	if _, err := admin.New("http://"+mock.Addr(), "").SetFaults(ctx, profile); err != nil {
		return window{}, fmt.Errorf("start the outage: %w", err)
	}
	sw, err := e.startWatch(prefix)
	if err != nil {
		return window{}, err
	}
	if err := e.produce(ctx, t.Orders, msgs); err != nil {
		return window{}, err
	}
	if err := e.waitCommitted(ctx, group, t.Orders, 10*time.Minute); err != nil {
		return window{}, fmt.Errorf("%w (service: %v)", err, svc.failed())
	}
	w := sw.stop()
	if err := svc.stop(); err != nil {
		return window{}, fmt.Errorf("reefer-manager: %w", err)
	}

	// Every order must have concluded the way the case says, or the rate
	// would be the rate of something else.
	outTopic, what := t.Containers, "ContainerAssignedToOrder events"
	if down {
		outTopic, what = t.Retry, "records on order-retries"
	}
	got, err := e.count(ctx, outTopic)
	if err != nil {
		return window{}, err
	}
	want := int64(n)
	if !down {
		want += warmUpOrders
	}
	if got != want {
		return window{}, fmt.Errorf("%d %s, want %d", got, what, want)
	}
	return w, nil
}

// serviceEnv is the environment of reefer-manager or order-retry for one
// case: its topics, database, inventory and consumer group, and quiet logs;
// INVENTORY_TIMEOUT is that of a healthy inventory unless extra sets it.
// Everything else keeps the service's defaults (reefer-manager's
// MAX_IN_FLIGHT is 256, order-retry's 64) unless --service-env says
// otherwise.
func (e *env) serviceEnv(t topics, db, inventoryURL, group string, extra map[string]string) map[string]string {
	m := map[string]string{
		"KAFKA_BROKERS":     e.broker.Addr(),
		"KAFKA_CLIENT_ID":   group,
		"DATABASE_URL":      db,
		"INVENTORY_URL":     inventoryURL,
		"INVENTORY_TIMEOUT": e.p.callTimeout.String(),
		"HTTP_ADDR":         "127.0.0.1:0",
		"LOG_LEVEL":         "warn",
		"LOG_FORMAT":        "json",
		"ORDERS_TOPIC":      t.Orders,
		"CONTAINERS_TOPIC":  t.Containers,
		"RETRY_TOPIC":       t.Retry,
		"DLQ_TOPIC":         t.DLQ,
		"CONSUMER_GROUP":    group,
	}
	maps.Copy(m, extra)
	maps.Copy(m, e.p.serviceEnv)
	return m
}
