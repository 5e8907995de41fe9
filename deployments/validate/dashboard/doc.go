// Package dashboard reads a Grafana dashboard (its JSON model) and the
// PromQL queries of its panels, and names the metrics each query selects,
// with Prometheus' own PromQL parser.
//
// Grafana stores a query as text and runs it only when someone opens the
// panel: a syntax error or a misspelled metric shows as "No data", which
// looks the same as a quiet system. Parsing every query and comparing the
// metric names with what the services export (package metrics) catches
// both before anyone opens the dashboard.
//
// Grafana's own variables ($__rate_interval, $__range, $datasource, ...)
// are replaced by plain values before parsing, as Grafana does before
// sending a query.
package dashboard
