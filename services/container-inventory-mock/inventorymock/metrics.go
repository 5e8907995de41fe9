package inventorymock

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/reeferdlq/reefer-dlq/pkg/platform/buildinfo"
	"github.com/reeferdlq/reefer-dlq/services/container-inventory-mock/inventorymock/store"
)

// metrics are the mock's own series, next to the generic HTTP ones that
// opsserver records (http_requests_total, http_request_duration_seconds).
type metrics struct {
	calls    *prometheus.CounterVec
	inFlight prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer, st *store.Store) (*metrics, error) {
	m := &metrics{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "inventory_mock_calls_total",
			Help: "Inventory API calls by route, injected fault (none when the real handler answered) and status (dropped when the connection was closed).",
		}, []string{"route", "fault", "status"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "inventory_mock_calls_in_flight",
			Help: "Inventory API calls being served now, including calls held by injected latency or timeouts.",
		}),
	}
	collectors := []prometheus.Collector{m.calls, m.inFlight,
		buildinfo.Gauge(prometheus.GaugeOpts{Name: "inventory_mock_build_info",
			Help: "Always 1; the labels say what runs: version, revision, goversion."}, buildinfo.Read())}
	for _, status := range []store.Status{store.Allocated, store.Available} {
		collectors = append(collectors, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "inventory_mock_containers",
			Help:        "Containers the inventory knows, by status.",
			ConstLabels: prometheus.Labels{"status": string(status)},
		}, func() float64 {
			st := st.Stats()
			if status == store.Allocated {
				return float64(st.Allocated)
			}
			return float64(st.Containers - st.Allocated)
		}))
	}
	for _, c := range collectors {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register inventory mock metrics: %w", err)
		}
	}
	return m, nil
}
