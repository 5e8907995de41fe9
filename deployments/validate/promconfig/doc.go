// Package promconfig reads the subset of Prometheus' configuration file
// that the compose stack uses, strictly: a key Prometheus would not know,
// or one this package does not model yet, is an error rather than a scrape
// job that silently does nothing. Durations are parsed with Prometheus' own
// duration syntax.
//
// The full configuration package of Prometheus links every service
// discovery mechanism and several cloud SDKs; this subset keeps the
// validation module small. A key added to prometheus.yml that is valid for
// Prometheus needs a field here first.
package promconfig
