package retrier

import (
	"context"
	"fmt"
	"strconv"
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
// registry that /metrics serves. The README lists them and what they mean
// for the person on call.
type metrics struct {
	maxAttempts int

	consumed     prometheus.Counter
	attempts     *prometheus.CounterVec
	successes    *prometheus.CounterVec
	retried      prometheus.Counter
	deadLettered *prometheus.CounterVec
	stale        *prometheus.CounterVec
	handoffErrs  prometheus.Counter
	quarantined  prometheus.Counter
	lateness     prometheus.Histogram
	processing   *prometheus.HistogramVec
	breaker      prometheus.Gauge
	fastFailures prometheus.Counter
	// The hand-off's own series (see handoff.Metrics).
	handoff handoff.Metrics
}

// Circuit-breaker states as gauge values.
var breakerStates = map[string]float64{"closed": 0, "half-open": 1, "open": 2}

// attemptBeyondMax labels attempts of records that arrive with more failed
// attempts than RETRY_MAX_ATTEMPTS allows (a producer configured with a
// larger budget); it keeps the label set bounded.
const attemptBeyondMax = "beyond-max"

// newMetrics registers the series. pending, running and maxPending read
// the scheduler's state when /metrics is scraped.
func newMetrics(reg prometheus.Registerer, maxAttempts int, pending, running func() int, maxPending int) (*metrics, error) {
	const ns = "order_retry"
	m := &metrics{
		maxAttempts: maxAttempts,
		consumed: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "records_consumed_total",
			Help: "Records fetched from the retry topic."}),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "attempts_total",
			Help: "Allocation attempts started, by attempt number (reefer-manager's first attempt is 1, so the first retry is 2; a redriven record starts again at 1)."},
			[]string{"attempt"}),
		successes: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "successes_total",
			Help: "Orders concluded by a retry, by the attempt number that succeeded and the outcome (allocated or rejected)."},
			[]string{"attempt", "outcome"}),
		retried: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "records_retried_total",
			Help: "Records that failed again and were republished to the retry topic with the next attempt."}),
		deadLettered: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "records_dead_lettered_total",
			Help: "Records written to the dead-letter topic, by x-dlq-reason."}, []string{"reason"}),
		stale: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "stale_records_total",
			Help: "Retry records of an order that had already concluded (a duplicate chain left by a crash), by that conclusion: allocated (success events written again) or dead-lettered (dropped)."},
			[]string{"concluded"}),
		quarantined: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "containers_quarantined_total",
			Help: "Reefers taken out of the pool because the inventory answered 409 for them (another order holds them there)."}),
		handoffErrs: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "handoff_errors_total",
			Help: "Outcomes that could not be written; the record is processed again, not committed."}),
		lateness: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Name: "lateness_seconds",
			Help: "How late a retry starts: actual start minus x-retry-due-at. Never negative: no retry starts early.",
			// 1 ms (the header's resolution) to a minute (a backlog).
			Buckets: []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}}),
		processing: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Name: "processing_seconds",
			Help: "Time from the start of a retry to its acknowledged hand-off, by route.",
			// From 100µs (a fast local allocation) to 10s (an inventory timeout).
			Buckets: prometheus.ExponentialBucketsRange(0.0001, 10, 16)}, []string{"route"}),
		breaker: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "inventory_circuit_state",
			Help: "State of the inventory circuit breaker: 0 closed, 1 half-open, 2 open."}),
		fastFailures: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "inventory_fast_failures_total",
			Help: "Retries the open circuit refused without calling the inventory (transient circuit-open failures)."}),
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
	for _, c := range []string{string(allocation.StateAllocated), string(allocation.StateDeadLettered)} {
		m.stale.WithLabelValues(c)
	}
	gauges := []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Name: "pending_records",
			Help: "Records held waiting for their due time. At max_pending the service stops fetching."},
			func() float64 { return float64(pending()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Name: "running_records",
			Help: "Records whose retry is running now (at most MAX_IN_FLIGHT)."},
			func() float64 { return float64(running()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Name: "max_pending",
			Help: "MAX_PENDING: the bound on waiting plus running records."},
			func() float64 { return float64(maxPending) }),
	}
	gauges = append(gauges, buildinfo.Gauge(prometheus.GaugeOpts{Namespace: ns, Name: "build_info",
		Help: "Always 1; the labels say what runs: version, revision, goversion."}, buildinfo.Read()))
	for _, c := range append(gauges, m.consumed, m.attempts, m.successes, m.retried, m.deadLettered,
		m.stale, m.handoffErrs, m.quarantined, m.lateness, m.processing, m.breaker, m.fastFailures,
		m.handoff.Failures, m.handoff.Oversize, m.handoff.Blocked) {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register metrics: %w", err)
		}
	}
	return m, nil
}

// attemptLabel is the label value of attempt number n.
func (m *metrics) attemptLabel(n int) string {
	if n > m.maxAttempts {
		return attemptBeyondMax
	}
	return strconv.Itoa(n)
}

// started counts the start of attempt number n.
func (m *metrics) started(n int) {
	m.attempts.WithLabelValues(m.attemptLabel(n)).Inc()
}

// observe counts one processed record by the route it took; n is its
// attempt number, 0 for a record whose headers could not be read.
func (m *metrics) observe(d orders.Decision, err error, n int, took time.Duration) {
	if err != nil {
		m.handoffErrs.Inc()
		return
	}
	switch {
	case d.Concluded != "":
		m.stale.WithLabelValues(string(d.Concluded)).Inc()
	case d.Route == handoff.RouteAllocated, d.Route == handoff.RouteRejected:
		m.successes.WithLabelValues(m.attemptLabel(n), string(d.Route)).Inc()
	case d.Route == handoff.RouteRetry:
		m.retried.Inc()
	case d.Route == handoff.RouteDeadLetter:
		m.deadLettered.WithLabelValues(string(d.Reason)).Inc()
		if d.Quarantined != "" {
			m.quarantined.Inc()
		}
	}
	m.processing.WithLabelValues(string(d.Route)).Observe(took.Seconds())
}

// setBreakerState records a circuit-breaker transition.
func (m *metrics) setBreakerState(state string) {
	if v, ok := breakerStates[state]; ok {
		m.breaker.Set(v)
	}
}

// lagDesc names the consumer lag per partition that grouplag exports:
// the group's committed offset to the end of each partition of the retry
// topic. Records waiting for their due time are not committed yet, so
// they count: up to RETRY_MAX_DELAY of retries is normal lag here.
var lagDesc = prometheus.NewDesc("order_retry_consumer_lag",
	"Records between the group's committed offset and the end of each partition of the retry topic, read from the broker at each scrape (every replica exports every partition: aggregate with max).",
	grouplag.Labels, nil)

// countedInventory counts the calls the open circuit refused.
type countedInventory struct {
	next allocation.Inventory
	fast prometheus.Counter
}

func (c countedInventory) Allocate(ctx context.Context, containerID, orderID string) error {
	err := c.next.Allocate(ctx, containerID, orderID)
	if inventory.FastFailure(err) {
		c.fast.Inc()
	}
	return err
}
