package manager

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/reeferdlq/reefer-dlq/pkg/kafkaretry/handoff"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/orders"
	"github.com/reeferdlq/reefer-dlq/pkg/reefer/pipeline"
)

// ns is the namespace of the service's series.
const ns = "reefer_manager"

// metrics are the service's Prometheus series: the ones every stage
// exports (pipeline.Metrics) and its own, registered on the private
// registry that /metrics serves. The README lists them.
type metrics struct {
	stage     *pipeline.Metrics
	allocated prometheus.Counter
	rejected  prometheus.Counter
	skipped   prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	stage, err := pipeline.NewMetrics(reg, ns)
	if err != nil {
		return nil, err
	}
	m := &metrics{
		stage: stage,
		allocated: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "orders_allocated_total",
			Help: "Orders allocated a reefer; ContainerAllocated and ContainerAssignedToOrder written."}),
		rejected: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "orders_rejected_total",
			Help: "Orders no reefer can take; OrderRejected written."}),
		skipped: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "records_skipped_total",
			Help: "Events of other types on the orders topic, committed without processing."}),
	}
	for _, c := range []prometheus.Collector{m.allocated, m.rejected, m.skipped} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register metrics: %w", err)
		}
	}
	return m, nil
}

// observe counts what is this service's own in one handled record (the
// stage's series counted it already).
func (m *metrics) observe(h orders.Handled) {
	if h.Err != nil {
		return
	}
	switch h.Decision.Route {
	case handoff.RouteAllocated:
		m.allocated.Inc()
	case handoff.RouteRejected:
		m.rejected.Inc()
	case handoff.RouteSkipped:
		m.skipped.Inc()
	}
}
