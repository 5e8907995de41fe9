package handoff

import (
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/reeferdlq/reefer-dlq/pkg/failure"
	"github.com/reeferdlq/reefer-dlq/pkg/retrymeta"
)

// Metrics are the series every service that hands records off exports the
// same way, under its own namespace:
//
//	<ns>_failures_total{class}          processing failures handed off, by class
//	                                    (transient, permanent, config): alert on
//	                                    config, which only an operator fixes
//	<ns>_oversize_dead_letters_total    records dead-lettered as oversize
//	<ns>_handoff_blocked{topic}         1 while the topic cannot be written to for
//	                                    a reason retrying cannot fix (see Blockage)
type Metrics struct {
	failures *prometheus.CounterVec
	oversize prometheus.Counter
	blocked  *prometheus.GaugeVec
}

// NewMetrics registers the series on reg, with zeros for every class and
// for each topic of topics, so that rate() and alerts work from the start.
func NewMetrics(reg prometheus.Registerer, namespace string, topics Topics) (*Metrics, error) {
	m := &Metrics{
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "failures_total",
			Help: "Processing failures handed off to the retry or dead-letter topic, by class: transient, permanent, or config (credentials, schema, redirects: an operator must act)."},
			[]string{"class"}),
		oversize: prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: "oversize_dead_letters_total",
			Help: "Records dead-lettered with reason oversize: too large, with their hand-off headers, for the topic they had to go to."}),
		blocked: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: namespace, Name: "handoff_blocked",
			Help: "1 while the hand-off cannot write to the topic for a reason retrying cannot fix (unauthorised, unknown topic, a refused dead letter); its partitions stop until it is fixed."},
			[]string{"topic"}),
	}
	for _, c := range failure.Classes {
		m.failures.WithLabelValues(string(c))
	}
	for _, t := range []string{topics.Orders, topics.Containers, topics.Retry, topics.DeadLetter} {
		m.blocked.WithLabelValues(t)
	}
	for _, c := range []prometheus.Collector{m.failures, m.oversize, m.blocked} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register hand-off metrics: %w", err)
		}
	}
	return m, nil
}

// Observe counts a concluded record's failure, if it had one.
func (m *Metrics) Observe(d Decision) {
	if d.Err != nil && (d.Route == RouteRetry || d.Route == RouteDeadLetter) {
		m.failures.WithLabelValues(string(failure.ClassOf(d.Err))).Inc()
	}
	if d.Route == RouteDeadLetter && d.Reason == retrymeta.Oversize {
		m.oversize.Inc()
	}
}

// Blockage returns a Blockage that logs to log and keeps the
// handoff_blocked gauge.
func (m *Metrics) Blockage(log *slog.Logger) *Blockage {
	return &Blockage{
		Log: log,
		OnChange: func(topic string, blocked bool) {
			v := 0.0
			if blocked {
				v = 1
			}
			m.blocked.WithLabelValues(topic).Set(v)
		},
	}
}
