package pipeline

import (
	"context"
	"errors"
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

// Metrics are the series every stage exports under its own namespace
// (reefer_manager_..., order_retry_...), registered on the service's
// private registry that /metrics serves. A service adds its own beside
// them. The services' READMEs list them all; deployments/validate checks
// that every dashboard panel and alert names one of them.
type Metrics struct {
	Consumed     prometheus.Counter
	Retried      prometheus.Counter
	DeadLettered *prometheus.CounterVec
	HandoffErrs  prometheus.Counter
	Quarantined  prometheus.Counter
	Processing   *prometheus.HistogramVec
	Inventory    *prometheus.HistogramVec
	Breaker      prometheus.Gauge
	FastFailures prometheus.Counter
	// The hand-off's own series (see handoff.Metrics).
	Handoff handoff.Metrics
	// lag names the consumer lag per partition that grouplag exports.
	lag *prometheus.Desc
}

// Circuit-breaker states as gauge values.
var breakerStates = map[string]float64{"closed": 0, "half-open": 1, "open": 2}

// NewMetrics registers the shared series on reg, under namespace ns. Pass
// ns as a string constant: deployments/validate reads the metric names
// from the source, through this call.
func NewMetrics(reg prometheus.Registerer, ns string) (*Metrics, error) {
	// From 100µs (a fast local allocation) to 10s (an inventory timeout).
	latency := prometheus.ExponentialBucketsRange(0.0001, 10, 16)
	m := &Metrics{
		Consumed: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "records_consumed_total",
			Help: "Records fetched from the topic the service reads."}),
		Retried: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "records_retried_total",
			Help: "Records handed to the retry topic with their next attempt after a transient failure."}),
		DeadLettered: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "records_dead_lettered_total",
			Help: "Records written to the dead-letter topic, by x-dlq-reason."}, []string{"reason"}),
		Quarantined: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "containers_quarantined_total",
			Help: "Reefers taken out of the pool because the inventory answered 409 for them (another order holds them there)."}),
		HandoffErrs: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "handoff_errors_total",
			Help: "Outcomes that could not be written; the record is processed again, not committed."}),
		Processing: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Name: "processing_seconds",
			Help: "Time from the start of processing a record to its acknowledged hand-off, by route.", Buckets: latency},
			[]string{"route"}),
		Inventory: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Name: "inventory_request_seconds",
			Help: "Latency of inventory calls, by result (ok or error; an open circuit fails in microseconds).", Buckets: latency},
			[]string{"result"}),
		Breaker: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "inventory_circuit_state",
			Help: "State of the inventory circuit breaker: 0 closed, 1 half-open, 2 open."}),
		FastFailures: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "inventory_fast_failures_total",
			Help: "Allocations the open circuit refused without calling the inventory (transient circuit-open failures)."}),
		Handoff: handoff.Metrics{
			Failures: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "failures_total",
				Help: "Processing failures handed off to the retry or dead-letter topic, by class: transient, permanent, or config (credentials, schema, redirects: an operator must act)."},
				[]string{"class"}),
			Oversize: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "oversize_dead_letters_total",
				Help: "Records dead-lettered with reason oversize: too large, with their hand-off headers, for the topic they had to go to."}),
			Blocked: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "handoff_blocked",
				Help: "1 while the hand-off cannot write to the topic for a reason retrying cannot fix (unauthorised, unknown topic, a refused dead letter); its partitions stop until it is fixed."},
				[]string{"topic"}),
		},
		lag: prometheus.NewDesc(prometheus.BuildFQName(ns, "", "consumer_lag"),
			"Records between the group's committed offset and the end of each partition of the topic the service reads, read from the broker at each scrape (every replica exports every partition: aggregate with max).",
			grouplag.Labels, nil),
	}
	for _, reason := range retrymeta.Reasons {
		m.DeadLettered.WithLabelValues(string(reason)) // export zeros, so rate() works from the start
	}
	build := buildinfo.Gauge(prometheus.GaugeOpts{Namespace: ns, Name: "build_info",
		Help: "Always 1; the labels say what runs: version, revision, goversion."}, buildinfo.Read())
	for _, c := range []prometheus.Collector{m.Consumed, m.Retried, m.DeadLettered, m.HandoffErrs,
		m.Quarantined, m.Processing, m.Inventory, m.Breaker, m.FastFailures,
		m.Handoff.Failures, m.Handoff.Oversize, m.Handoff.Blocked, build} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register metrics: %w", err)
		}
	}
	return m, nil
}

// Observe counts one record the processor handled by the route it took.
// A record interrupted by a shutdown is no one's failure and is not
// counted.
func (m *Metrics) Observe(h orders.Handled) {
	if errors.Is(h.Err, orders.ErrInterrupted) {
		return
	}
	if h.Err != nil {
		m.HandoffErrs.Inc()
		return
	}
	d := h.Decision
	switch d.Route {
	case handoff.RouteRetry:
		m.Retried.Inc()
	case handoff.RouteDeadLetter:
		m.DeadLettered.WithLabelValues(string(d.Reason)).Inc()
		if d.Quarantined != "" {
			m.Quarantined.Inc()
		}
	}
	m.Processing.WithLabelValues(string(d.Route)).Observe(h.Took.Seconds())
	m.Handoff.Observe(d.Decision)
}

// setBreakerState records a circuit-breaker transition.
func (m *Metrics) setBreakerState(state string) {
	if v, ok := breakerStates[state]; ok {
		m.Breaker.Set(v)
	}
}

// timedInventory measures every inventory call and counts the calls the
// open circuit refused.
type timedInventory struct {
	next allocation.Inventory
	m    *Metrics
}

func (t timedInventory) Allocate(ctx context.Context, containerID, orderID string) error {
	start := time.Now()
	err := t.next.Allocate(ctx, containerID, orderID)
	result := "ok"
	if err != nil {
		result = "error"
	}
	if inventory.FastFailure(err) {
		t.m.FastFailures.Inc()
	}
	t.m.Inventory.WithLabelValues(result).Observe(time.Since(start).Seconds())
	return err
}
