package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	dto "github.com/prometheus/client_model/go"
)

// The families of client_golang's standard collectors are not spelled in
// the code that registers them: gather them from the collectors themselves,
// so the list is always that of the client_golang version in use.

func goCollector() prometheus.Collector { return collectors.NewGoCollector() }

func processCollector() prometheus.Collector {
	return collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})
}

// standard returns the families that the collector newCollector makes
// exports, marked Standard and placed at pos (where it is registered).
func standard(newCollector func() prometheus.Collector, pos string) []Family {
	reg := prometheus.NewRegistry()
	if err := reg.Register(newCollector()); err != nil {
		// A fresh registry refuses nothing; were it to, the families are
		// simply not known, and a dashboard naming them fails its test.
		return nil
	}
	mfs, err := reg.Gather()
	if err != nil {
		return nil
	}
	out := make([]Family, 0, len(mfs))
	for _, mf := range mfs {
		out = append(out, Family{Name: mf.GetName(), Kind: kindOf(mf.GetType()), Pos: pos, Standard: true})
	}
	return out
}

func kindOf(t dto.MetricType) Kind {
	switch t {
	case dto.MetricType_COUNTER:
		return Counter
	case dto.MetricType_GAUGE:
		return Gauge
	case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
		return Histogram
	case dto.MetricType_SUMMARY:
		return Summary
	}
	return Untyped
}
