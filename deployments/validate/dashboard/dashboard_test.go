package dashboard

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestMetricNames(t *testing.T) {
	cases := []struct {
		expr    string
		want    []string
		wantErr string
	}{
		{expr: `sum(rate(a_total[$__rate_interval]))`, want: []string{"a_total"}},
		{expr: `histogram_quantile(0.99, sum by (le) (rate(lat_bucket[${__rate_interval}])))`, want: []string{"lat_bucket"}},
		{expr: `sum(increase(b_total[$__range])) + sum(increase(a_total{outcome="x"}[$__range]))`, want: []string{"a_total", "b_total"}},
		{expr: `max by (instance) (g) or on() vector(0)`, want: []string{"g"}},
		{expr: `{__name__="c_total", job="x"}`, want: []string{"c_total"}},
		{expr: `sum(rate(a_total[1m])`, wantErr: "unclosed left parenthesis"},
		{expr: `{__name__=~"a_.*"}`, wantErr: "without an exact metric name"},
		{expr: `rate(a_total[$window])`, wantErr: "variable $window"},
	}
	for _, tc := range cases {
		t.Run(tc.expr, func(t *testing.T) {
			got, err := MetricNames(tc.expr)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("MetricNames error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestLoadAndQueriesIncludeRowPanels(t *testing.T) {
	path := filepath.Join(t.TempDir(), "d.json")
	data := `{"uid": "u", "title": "T", "extra": {"ignored": true}, "panels": [
	  {"id": 1, "type": "timeseries", "targets": [{"refId": "A", "expr": "a"}, {"refId": "B"}]},
	  {"id": 2, "type": "row", "collapsed": true, "panels": [{"id": 3, "type": "stat", "targets": [{"refId": "A", "expr": "b"}]}]}
	]}`
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, q := range d.Queries() {
		got = append(got, q.Expr)
	}
	if diff := cmp.Diff([]string{"a", "b"}, got); diff != "" {
		t.Errorf("queries (-want +got):\n%s", diff)
	}
	if n := len(d.AllPanels()); n != 3 {
		t.Errorf("AllPanels: %d panels, want 3", n)
	}
}

func TestLoadRefusesBrokenJSON(t *testing.T) {
	for name, data := range map[string]string{"truncated": `{"uid": "u", "panels": [`, "two objects": `{} {}`, "wrong type": `{"panels": {}}`} {
		path := filepath.Join(t.TempDir(), "d.json")
		if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := Load(path); err == nil {
			t.Errorf("%s: Load accepted %q", name, data)
		}
	}
}
