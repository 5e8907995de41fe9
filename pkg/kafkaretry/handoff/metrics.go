package handoff

import (
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/failure"
	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/retrymeta"
)

// Metrics are the series every service that hands records off exports,
// under its own namespace:
//
//	<ns>_failures_total{class}          processing failures handed off, by class
//	                                    (transient, permanent, config): alert on
//	                                    config, which only an operator fixes
//	<ns>_oversize_dead_letters_total    records dead-lettered as oversize
//	<ns>_handoff_blocked{topic}         1 while the topic cannot be written to for
//	                                    a reason retrying cannot fix (see Blockage)
//
// The service builds the collectors (so that their names are spelled out
// where it defines its other series), registers them, and fills this
// struct; [Metrics.Init] exports the zeros, [Metrics.Observe] counts a
// Decision and [Metrics.Blockage] keeps the gauge.
type Metrics struct {
	Failures *prometheus.CounterVec // label class
	Oversize prometheus.Counter
	Blocked  *prometheus.GaugeVec // label topic
}

// Init exports a zero for every class and for each of topics (every topic
// the service writes to), so that rate() and alerts work from the start.
func (m *Metrics) Init(topics ...string) {
	for _, c := range failure.Classes {
		m.Failures.WithLabelValues(string(c))
	}
	for _, t := range topics {
		m.Blocked.WithLabelValues(t)
	}
}

// Observe counts a concluded record's failure, if it had one.
func (m *Metrics) Observe(d Decision) {
	if d.Err != nil && (d.Route == RouteRetry || d.Route == RouteDeadLetter) {
		m.Failures.WithLabelValues(string(failure.ClassOf(d.Err))).Inc()
	}
	if d.Route == RouteDeadLetter && d.Reason == retrymeta.Oversize {
		m.Oversize.Inc()
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
			m.Blocked.WithLabelValues(topic).Set(v)
		},
	}
}
