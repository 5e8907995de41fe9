package report_test

import (
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/reeferdlq/reefer-dlq/bench/report"
)

func met(b bool) *bool { return &b }

func TestFinishComputesRatiosAndChecksGoals(t *testing.T) {
	run := report.Run{Rows: []report.Row{
		{Key: "db", Value: 4000},
		{Key: "inv", Value: 8000},
		{Key: "svc", Value: 3000, RatioTo: []string{"db", "inv"}, Goals: []report.Goal{
			{Metric: report.MetricValue, Op: ">=", Target: 5000},
			{Metric: report.MetricRatio, Op: ">=", Target: 0.7},
		}},
		{Key: "down", Value: 2900, RatioTo: []string{"svc"}, Goals: []report.Goal{{Metric: report.MetricRatio, Op: ">=", Target: 0.9}}},
		{Key: "rate", Value: 1010, RatioTarget: 1000, Goals: []report.Goal{
			{Metric: report.MetricRatio, Op: ">=", Target: 0.95},
			{Metric: report.MetricRatio, Op: "<=", Target: 1.05},
		}},
		{Key: "late", Value: 12, Metrics: map[string]float64{"early": 0}, Goals: []report.Goal{
			{Metric: "early", Op: "==", Target: 0},
			{Metric: "missing", Op: "<", Target: 1},
		}},
		{Key: "orphan", Value: 1, RatioTo: []string{"not-run"}, Goals: []report.Goal{{Metric: report.MetricRatio, Op: "<", Target: 0.1}}},
	}}
	if err := run.Finish(); err != nil {
		t.Fatal(err)
	}
	ratios := map[string]float64{}
	goals := map[string][]*bool{}
	for _, r := range run.Rows {
		if r.Ratio != nil {
			ratios[r.Key] = math.Round(*r.Ratio*1000) / 1000
		}
		for _, g := range r.Goals {
			goals[r.Key] = append(goals[r.Key], g.Met)
		}
	}
	wantRatios := map[string]float64{"svc": 0.75, "down": 0.967, "rate": 1.01}
	if diff := cmp.Diff(wantRatios, ratios); diff != "" {
		t.Errorf("ratios (-want +got):\n%s", diff)
	}
	wantGoals := map[string][]*bool{
		"svc":    {met(false), met(true)},
		"down":   {met(true)},
		"rate":   {met(true), met(true)},
		"late":   {met(true), nil}, // a metric that was not measured is not judged
		"orphan": {nil},            // nor a ratio to a row that did not run
	}
	if diff := cmp.Diff(wantGoals, goals); diff != "" {
		t.Errorf("goals met (-want +got):\n%s", diff)
	}

	var table strings.Builder
	if err := run.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"0.750 (÷ min(db,inv))", "value >= 5000; ratio >= 0.7", "NO; yes", "early == 0; missing < 1", "yes; n/a"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}
}

func TestFinishRejectsBadRows(t *testing.T) {
	tests := []struct {
		name string
		rows []report.Row
		want string
	}{
		{"duplicate key", []report.Row{{Key: "a"}, {Key: "a"}}, `two rows have the key "a"`},
		{"unknown operator", []report.Row{{Key: "a", Goals: []report.Goal{{Metric: report.MetricValue, Op: "~", Target: 1}}}}, `unknown operator "~"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			run := report.Run{Rows: tt.rows}
			if err := run.Finish(); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Finish = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestWriteFilesAndChart(t *testing.T) {
	dir := t.TempDir()
	run := report.Run{Command: "bench --quick", Rows: []report.Row{
		{Case: "1", Key: "a", Name: "a | b", Params: "n=1", Value: 1500, Unit: "orders/s"},
		{Case: "6", Key: "b", Name: "late", Params: "n=2", Value: 3, Unit: "ms", Note: "a note"},
	}}
	if err := run.Finish(); err != nil {
		t.Fatal(err)
	}
	if err := run.WriteFiles(dir); err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(filepath.Join(dir, "results.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"`bench --quick`", `a \| b`, "_a note_"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("results.md lacks %q:\n%s", want, md)
		}
	}

	path := filepath.Join(dir, "chart.png")
	panels := []report.Panel{
		{Title: "linear", Groups: []string{"x", "y"}, Series: []report.Series{{Name: "s", Values: []float64{1, math.NaN()}}},
			Lines: []report.Line{{Label: "goal", Y: 2}}},
		{Title: "log", LogY: true, Groups: []string{"x", "y"}, Series: []report.Series{
			{Name: "p50", Values: []float64{0.5, 2000}}, {Name: "p99", Values: []float64{3, math.NaN()}},
		}},
		{Title: "empty", Groups: []string{"x"}, Series: []report.Series{{Values: []float64{math.NaN()}}}},
		// A run of other cases leaves a log panel with nothing in it.
		{Title: "empty log", LogY: true, Groups: []string{"x"}, Series: []report.Series{{Values: []float64{math.NaN()}}}},
	}
	if err := report.WriteChart(path, "test", panels); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := png.Decode(f); err != nil {
		t.Errorf("chart.png: %v", err)
	}

	bad := []report.Panel{{Title: "bad", Groups: []string{"x", "y"}, Series: []report.Series{{Values: []float64{1}}}}}
	if err := report.WriteChart(path, "test", bad); err == nil || !strings.Contains(err.Error(), "1 values for 2 groups") {
		t.Errorf("WriteChart with a short series = %v, want an error naming it", err)
	}
}
