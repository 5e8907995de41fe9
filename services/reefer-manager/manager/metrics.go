package manager

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/handoff"
	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/retrymeta"
	"github.com/reeferdlq/reefer-dlq/pkg/platform/buildinfo"
	"github.com/reeferdlq/reefer-dlq/pkg/platform/grouplag"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/allocation"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/inventory"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/orders"
)

// metrics are the service's Prometheus series, registered on the private
// registry that /metrics serves. The README lists them.
type metrics struct {
	consumed     prometheus.Counter
	allocated    prometheus.Counter
	rejected     prometheus.Counter
	retried      prometheus.Counter
	deadLettered *prometheus.CounterVec
	skipped      prometheus.Counter
	handoffErrs  prometheus.Counter
	quarantined  prometheus.Counter
	processing   *prometheus.HistogramVec
	inventory    *prometheus.HistogramVec
	breaker      prometheus.Gauge
	fastFailures prometheus.Counter
	// The hand-off's own series (see handoff.Metrics).
	handoff handoff.Metrics
}

// Circuit-breaker states as gauge values.
var breakerStates = map[string]float64{"closed": 0, "half-open": 1, "open": 2}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	const ns = "reefer_manager"
	// From 100µs (a fast local allocation) to 10s (an inventory timeout).
	latency := []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}
	m := &metrics{
		consumed: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "records_consumed_total",
			Help: "Records fetched from the orders topic."}),
		allocated: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "orders_allocated_total",
			Help: "Orders allocated a reefer; ContainerAllocated and ContainerAssignedToOrder written."}),
		rejected: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "orders_rejected_total",
			Help: "Orders no reefer can take; OrderRejected written."}),
		retried: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "records_retried_total",
			Help: "Records handed to the retry topic after a transient failure."}),
		deadLettered: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "records_dead_lettered_total",
			Help: "Records written to the dead-letter topic, by x-dlq-reason."}, []string{"reason"}),
		skipped: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "records_skipped_total",
			Help: "Events of other types on the orders topic, committed without processing."}),
		quarantined: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "containers_quarantined_total",
			Help: "Reefers taken out of the pool because the inventory answered 409 for them (another order holds them there)."}),
		handoffErrs: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "handoff_errors_total",
			Help: "Outcomes that could not be written; the record is processed again, not committed."}),
		processing: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Name: "processing_seconds",
			Help: "Time from the start of processing a record to its acknowledged hand-off, by route.", Buckets: latency},
			[]string{"route"}),
		inventory: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Name: "inventory_request_seconds",
			Help: "Latency of inventory calls, by result (ok or error; an open circuit fails in microseconds).", Buckets: latency},
			[]string{"result"}),
		breaker: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "inventory_circuit_state",
			Help: "State of the inventory circuit breaker: 0 closed, 1 half-open, 2 open."}),
		fastFailures: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "inventory_fast_failures_total",
			Help: "Allocations the open circuit refused without calling the inventory (transient circuit-open failures)."}),
		handoff: handoff.Metrics{
			Failures: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "failures_total",
				Help: "Processing failures handed off to the retry or dead-letter topic, by class: transient, permanent, or config (credentials, schema, redirects: an operator must act)."},
				[]string{"class"}),
			Oversize: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "oversize_dead_letters_total",
				Help: "Records dead-lettered with reason oversize: too large, with their hand-off headers, for the topic they had to go to."}),
			Blocked: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "handoff_blocked",
				Help: "1 while the hand-off cannot write to the topic for a reason retrying cannot fix (unauthorised, unknown topic, a refused dead letter); its partitions stop until it is fixed."},
				[]string{"topic"}),
		},
	}
	for _, reason := range retrymeta.Reasons {
		m.deadLettered.WithLabelValues(string(reason)) // export zeros, so rate() works from the start
	}
	build := buildinfo.Gauge(prometheus.GaugeOpts{Namespace: ns, Name: "build_info",
		Help: "Always 1; the labels say what runs: version, revision, goversion."}, buildinfo.Read())
	for _, c := range []prometheus.Collector{m.consumed, m.allocated, m.rejected, m.retried, m.deadLettered,
		m.skipped, m.handoffErrs, m.quarantined, m.processing, m.inventory, m.breaker, m.fastFailures,
		m.handoff.Failures, m.handoff.Oversize, m.handoff.Blocked, build} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register metrics: %w", err)
		}
	}
	return m, nil
}

// observe counts one processed record by the route it took.
func (m *metrics) observe(d orders.Decision, err error, took time.Duration) {
	if err != nil {
		m.handoffErrs.Inc()
		return
	}
	switch d.Route {
	case handoff.RouteAllocated:
		m.allocated.Inc()
	case handoff.RouteRejected:
		m.rejected.Inc()
	case handoff.RouteRetry:
		m.retried.Inc()
	case handoff.RouteDeadLetter:
		m.deadLettered.WithLabelValues(string(d.Reason)).Inc()
		if d.Quarantined != "" {
			m.quarantined.Inc()
		}
	case handoff.RouteSkipped:
		m.skipped.Inc()
	}
	m.processing.WithLabelValues(string(d.Route)).Observe(took.Seconds())
}

// setBreakerState records a circuit-breaker transition.
func (m *metrics) setBreakerState(state string) {
	if v, ok := breakerStates[state]; ok {
		m.breaker.Set(v)
	}
}

// timedInventory measures every inventory call. It decorates the client
// instead of living in it, because the latency series are this service's.
type timedInventory struct {
	next    allocation.Inventory
	latency *prometheus.HistogramVec
	fast    prometheus.Counter
}

func (t timedInventory) Allocate(ctx context.Context, containerID, orderID string) error {
	start := time.Now()
	err := t.next.Allocate(ctx, containerID, orderID)
	result := "ok"
	if err != nil {
		result = "error"
	}
	if inventory.FastFailure(err) {
		t.fast.Inc()
	}
	t.latency.WithLabelValues(result).Observe(time.Since(start).Seconds())
	return err
}

// lagDesc names the consumer lag per partition that grouplag exports:
// the group's committed offset to the end of each partition of orders.
var lagDesc = prometheus.NewDesc("reefer_manager_consumer_lag",
	"Records between the group's committed offset and the end of each partition of the orders topic, read from the broker at each scrape (every replica exports every partition: aggregate with max).",
	grouplag.Labels, nil)
