package retrier

import (
	"fmt"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/handoff"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/allocation"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/orders"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/pipeline"
)

// ns is the namespace of the service's series.
const ns = "order_retry"

// metrics are the service's Prometheus series: the ones every stage
// exports (pipeline.Metrics) and its own, registered on the private
// registry that /metrics serves. The README lists them and what they mean
// for the person on call.
type metrics struct {
	maxAttempts int

	stage     *pipeline.Metrics
	attempts  *prometheus.CounterVec
	successes *prometheus.CounterVec
	stale     *prometheus.CounterVec
	lateness  prometheus.Histogram
}

// attemptBeyondMax labels attempts of records that arrive with more failed
// attempts than RETRY_MAX_ATTEMPTS allows (a producer configured with a
// larger budget); it keeps the label set bounded.
const attemptBeyondMax = "beyond-max"

// newMetrics registers the series. pending, running and maxPending read
// the scheduler's state when /metrics is scraped.
func newMetrics(reg prometheus.Registerer, maxAttempts int, pending, running func() int, maxPending int) (*metrics, error) {
	stage, err := pipeline.NewMetrics(reg, ns)
	if err != nil {
		return nil, err
	}
	m := &metrics{
		maxAttempts: maxAttempts,
		stage:       stage,
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "attempts_total",
			Help: "Allocation attempts started, by attempt number (reefer-manager's first attempt is 1, so the first retry is 2; a redriven record starts again at 1)."},
			[]string{"attempt"}),
		successes: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "successes_total",
			Help: "Orders concluded by a retry, by the attempt number that succeeded and the outcome (allocated or rejected)."},
			[]string{"attempt", "outcome"}),
		stale: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "stale_records_total",
			Help: "Retry records of an order that had already concluded (a duplicate chain left by a crash), by that conclusion: allocated (success events written again) or dead-lettered (dropped)."},
			[]string{"concluded"}),
		lateness: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Name: "lateness_seconds",
			Help: "How late a retry starts: actual start minus x-retry-due-at. Never negative: no retry starts early.",
			// 1 ms (the header's resolution) to a minute (a backlog).
			Buckets: []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}}),
	}
	for _, c := range []string{string(allocation.StateAllocated), string(allocation.StateDeadLettered)} {
		m.stale.WithLabelValues(c)
	}
	collectors := []prometheus.Collector{m.attempts, m.successes, m.stale, m.lateness,
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
	for _, c := range collectors {
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

// observe counts what is this service's own in one handled record (the
// stage's series counted it already): the attempt it started (n, 0 for a
// record whose headers could not be read), the attempt that succeeded,
// and the stale records of concluded orders.
func (m *metrics) observe(h orders.Handled) {
	n, d := h.Attempt, h.Decision
	if n > 0 {
		m.attempts.WithLabelValues(m.attemptLabel(n)).Inc()
	}
	if h.Err != nil {
		return
	}
	switch {
	case d.Concluded != "":
		m.stale.WithLabelValues(string(d.Concluded)).Inc()
	case d.Route == handoff.RouteAllocated, d.Route == handoff.RouteRejected:
		m.successes.WithLabelValues(m.attemptLabel(n), string(d.Route)).Inc()
	}
}
