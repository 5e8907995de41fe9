// Package metrics finds the Prometheus metric families that Go source code
// defines, by reading the source: every prometheus.CounterOpts, GaugeOpts,
// HistogramOpts and SummaryOpts literal (Namespace, Subsystem and Name
// joined as client_golang does) and every prometheus.NewDesc call.
//
// A dashboard or an alert that names a metric nobody exports shows an empty
// panel, silently, forever; comparing its queries with what the services'
// code defines turns that into a failing test. Reading the source finds
// every family, including the labelled ones that a scrape of an idle
// service would not show yet.
//
// A name the scanner cannot work out (built by a function call, or from a
// variable rather than a constant) is an error, not a silent omission.
package metrics
