package metrics

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// scan writes the files into a temporary package directory and scans it.
func scan(t *testing.T, files map[string]string) ([]Family, error) {
	t.Helper()
	dir := t.TempDir()
	for name, src := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return Scan(dir)
}

func names(fs []Family) []string {
	var out []string
	for _, f := range fs {
		if !f.Standard {
			out = append(out, f.Name+" "+string(f.Kind))
		}
	}
	return out
}

const header = `package svc

import "github.com/prometheus/client_golang/prometheus"
`

func TestScanFindsEveryWayOfNamingAFamily(t *testing.T) {
	fs, err := scan(t, map[string]string{
		"metrics.go": header + `
const ns = "shop"

func newMetrics() {
	const sub = "orders"
	_ = prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "placed_total", Help: "h"})
	_ = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Name: "latency_seconds"}, nil)
	_ = prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "queue_length"}, nil)
	_ = prometheus.NewSummary(prometheus.SummaryOpts{Name: "size_bytes"})
	_ = prometheus.NewDesc("shop_lag", "h", nil, nil)
	_ = prometheus.NewDesc(prometheus.BuildFQName(ns, "", "age_seconds"), "h", nil, nil)
}
`,
		"metrics_test.go":      header + `var _ = prometheus.CounterOpts{Name: "test_only_total"}`,
		"testdata/x.go":        header + `var _ = prometheus.CounterOpts{Name: "testdata_total"}`,
		"sub/renamed.go":       "package sub\n\nimport prom \"github.com/prometheus/client_golang/prometheus\"\n\nvar _ = prom.GaugeOpts{Name: \"renamed_import\"}\n",
		"sub/other_library.go": "package sub\n\nimport prometheus \"example.com/not/client_golang\"\n\nvar _ = prometheus.CounterOpts{Name: \"not_ours_total\"}\n",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"queue_length gauge", "renamed_import gauge", "shop_age_seconds untyped", "shop_lag untyped",
		"shop_latency_seconds histogram", "shop_orders_placed_total counter", "size_bytes summary",
	}
	if diff := cmp.Diff(want, names(fs)); diff != "" {
		t.Errorf("families (-want +got):\n%s", diff)
	}
}

func TestScanRefusesNamesItCannotRead(t *testing.T) {
	cases := map[string]string{
		"a variable":     `var name = "x"; var _ = prometheus.CounterOpts{Name: name}`,
		"a call":         `func n() string { return "x" }; var _ = prometheus.CounterOpts{Name: n()}`,
		"no field names": `var _ = prometheus.CounterOpts{"", "", "x", "h", nil}`,
		"no Name":        `var _ = prometheus.CounterOpts{Help: "h"}`,
	}
	for name, src := range cases {
		t.Run(name, func(t *testing.T) {
			if fs, err := scan(t, map[string]string{"m.go": header + src}); err == nil {
				t.Fatalf("Scan accepted it and found %v", names(fs))
			}
		})
	}
}

func TestScanListsTheStandardCollectors(t *testing.T) {
	fs, err := scan(t, map[string]string{"ops.go": `package ops

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

func register(r *prometheus.Registry) {
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
}
`})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"go_goroutines", "go_gc_duration_seconds", "process_resident_memory_bytes"} {
		if !slices.ContainsFunc(fs, func(f Family) bool { return f.Name == name && f.Standard }) {
			t.Errorf("no standard family %s among %d", name, len(fs))
		}
	}
}

func TestSeriesOfAFamily(t *testing.T) {
	cases := []struct {
		f    Family
		want string
	}{
		{Family{Name: "a_total", Kind: Counter}, "a_total"},
		{Family{Name: "lat", Kind: Histogram}, "lat_bucket lat_sum lat_count"},
		{Family{Name: "size", Kind: Summary}, "size size_sum size_count"},
	}
	for _, tc := range cases {
		if got := strings.Join(tc.f.Series(), " "); got != tc.want {
			t.Errorf("%s %s: series %q, want %q", tc.f.Kind, tc.f.Name, got, tc.want)
		}
	}
}

// TestScanInstantiatesSharedFamilies: a family whose namespace is a
// parameter of the function that defines it (the series two services
// share) is defined once per constant namespace its calls pass, in any
// scanned package; a call it cannot read, or no call at all, is an error.
func TestScanInstantiatesSharedFamilies(t *testing.T) {
	shared := `package shared

import "github.com/prometheus/client_golang/prometheus"

func NewMetrics(reg prometheus.Registerer, ns string) {
	_ = prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "retried_total", Help: "h"})
	_ = prometheus.NewDesc(prometheus.BuildFQName(ns, "", "consumer_lag"), "h", nil, nil)
}

var _ = prometheus.GaugeOpts{Name: "after_the_func"}
`
	fs, err := scan(t, map[string]string{
		"shared/metrics.go": shared,
		"a/a.go":            "package a\n\nconst ns = \"order_retry\"\n\nfunc f() { shared.NewMetrics(nil, ns) }\n",
		"b/b.go":            "package b\n\nfunc f() { shared.NewMetrics(nil, \"reefer_manager\"); shared.NewMetrics(nil, \"reefer_manager\") }\n",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"after_the_func gauge",
		"order_retry_consumer_lag untyped", "order_retry_retried_total counter",
		"reefer_manager_consumer_lag untyped", "reefer_manager_retried_total counter",
	}
	if diff := cmp.Diff(want, names(fs)); diff != "" {
		t.Errorf("families (-want +got):\n%s", diff)
	}

	for name, caller := range map[string]string{
		"no call":              "package a\n",
		"a variable namespace": "package a\n\nvar ns = \"x\"\n\nfunc f() { shared.NewMetrics(nil, ns) }\n",
	} {
		t.Run(name, func(t *testing.T) {
			if fs, err := scan(t, map[string]string{"shared/metrics.go": shared, "a/a.go": caller}); err == nil {
				t.Fatalf("Scan accepted it and found %v", names(fs))
			}
		})
	}
}
