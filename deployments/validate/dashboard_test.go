package validate

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/reeferdlq/reefer-dlq/deployments/validate/dashboard"
	"github.com/reeferdlq/reefer-dlq/deployments/validate/metrics"
)

// exportedSeries returns every series name the suite's code exports, with
// where it is defined.
func exportedSeries(t *testing.T) map[string]metrics.Family {
	t.Helper()
	families, err := metrics.Scan(repo(t, "services"), repo(t, "pkg"))
	if err != nil {
		t.Fatal(err)
	}
	series := map[string]metrics.Family{}
	for _, f := range families {
		for _, s := range f.Series() {
			series[s] = f
		}
	}
	// The scan must see every service: an empty result would let any
	// dashboard pass.
	for _, prefix := range []string{"reefer_manager_", "order_retry_", "inventory_mock_", "http_requests_total", "go_goroutines", "process_resident_memory_bytes"} {
		if !slices.ContainsFunc(families, func(f metrics.Family) bool { return strings.HasPrefix(f.Name, prefix) }) {
			t.Fatalf("the scan of services/ and pkg/ found no metric starting with %s", prefix)
		}
	}
	return series
}

func TestGrafanaDashboardNamesOnlyExportedMetrics(t *testing.T) {
	d, err := dashboard.Load(repo(t, "deployments", "grafana", "dashboards", "reefer-dlq.json"))
	if err != nil {
		t.Fatal(err)
	}
	if d.UID == "" || d.Title == "" {
		t.Errorf("dashboard uid %q title %q: both are needed for provisioning and links", d.UID, d.Title)
	}
	exported := exportedSeries(t)
	queries := d.Queries()
	if len(queries) == 0 {
		t.Fatal("the dashboard has no PromQL query")
	}
	used := map[string]bool{}
	for _, q := range queries {
		at := fmt.Sprintf("panel %d %q query %s", q.Panel.ID, q.Panel.Title, q.RefID)
		names, err := dashboard.MetricNames(q.Expr)
		if err != nil {
			t.Errorf("%s: %v", at, err)
			continue
		}
		for _, n := range names {
			used[n] = true
			if _, ok := exported[n]; !ok {
				t.Errorf("%s: metric %s is exported by no service (%s)", at, n, q.Expr)
			}
		}
		if ds := q.Datasource; ds == nil || ds.Type != "prometheus" || ds.UID != "${datasource}" {
			t.Errorf("%s: datasource %+v: want the dashboard's Prometheus variable ${datasource}", at, ds)
		}
	}

	// The panels the issue asks for, by the metrics that show them.
	for what, metric := range map[string]string{
		"input rate":            "reefer_manager_records_consumed_total",
		"allocations":           "reefer_manager_orders_allocated_total",
		"retries by attempt":    "order_retry_attempts_total",
		"dead letters (first)":  "reefer_manager_records_dead_lettered_total",
		"dead letters (retry)":  "order_retry_records_dead_lettered_total",
		"retry lateness":        "order_retry_lateness_seconds_bucket",
		"circuit breaker (rm)":  "reefer_manager_inventory_circuit_state",
		"circuit breaker (ors)": "order_retry_inventory_circuit_state",
		"consumer lag":          "reefer_manager_consumer_lag",
	} {
		if !used[metric] {
			t.Errorf("no panel shows %s (%s)", what, metric)
		}
	}

	ids := map[int]bool{}
	for _, p := range d.AllPanels() {
		if ids[p.ID] {
			t.Errorf("panel id %d is used twice", p.ID)
		}
		ids[p.ID] = true
		if ds := p.Datasource; p.Type != "row" && (ds == nil || ds.UID != "${datasource}") {
			t.Errorf("panel %d %q: datasource %+v: want the dashboard's Prometheus variable ${datasource}", p.ID, p.Title, ds)
		}
		if g := p.GridPos; g.W < 1 || g.H < 1 || g.X < 0 || g.X+g.W > 24 {
			t.Errorf("panel %d %q: gridPos %+v is outside the 24-column grid", p.ID, p.Title, g)
		}
	}
	if !slices.ContainsFunc(d.Templating.List, func(v dashboard.Variable) bool {
		return v.Name == "datasource" && v.Type == "datasource" && v.Query == "prometheus"
	}) {
		t.Error("no datasource variable named datasource of type prometheus: the panels refer to ${datasource}")
	}
}
