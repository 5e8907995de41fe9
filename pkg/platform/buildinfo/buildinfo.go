// Package buildinfo exports what a binary was built from as a Prometheus
// gauge, the `<service>_build_info` convention: the value is always 1 and
// the labels carry the facts, so a dashboard or an alert can join them to
// any other series (`* on (instance) group_left (version) …`) and a
// rollout shows as two versions side by side.
//
// The facts come from the binary itself (runtime/debug.ReadBuildInfo):
//
//   - version: the main module's version, "(devel)" for a build from a
//     checkout rather than `go install module@version`;
//   - revision: the VCS commit Go stamped into the binary ("unknown" when
//     built with -buildvcs=false or outside a repository), with "-dirty"
//     when the tree had uncommitted changes;
//   - goversion: the Go toolchain that built it.
package buildinfo

import (
	"runtime"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
)

// Info is what a binary was built from.
type Info struct {
	Version, Revision, GoVersion string
}

// Read returns the running binary's build facts.
func Read() Info {
	info := Info{Version: "unknown", Revision: "unknown", GoVersion: runtime.Version()}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return info
	}
	if bi.Main.Version != "" {
		info.Version = bi.Main.Version
	}
	dirty := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			info.Revision = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if dirty && info.Revision != "unknown" {
		info.Revision += "-dirty"
	}
	return info
}

// Gauge returns the build-info gauge named by opts (the service spells its
// own name, e.g. Namespace "order_retry", Name "build_info"), set to 1,
// with the labels version, revision and goversion added to opts'
// ConstLabels.
func Gauge(opts prometheus.GaugeOpts, info Info) prometheus.Gauge {
	labels := prometheus.Labels{"version": info.Version, "revision": info.Revision, "goversion": info.GoVersion}
	for k, v := range opts.ConstLabels {
		labels[k] = v
	}
	opts.ConstLabels = labels
	g := prometheus.NewGauge(opts)
	g.Set(1)
	return g
}
