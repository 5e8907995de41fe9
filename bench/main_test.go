package main

import (
	"bytes"
	"encoding/json"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/reeferdlq/reefer-dlq/bench/report"
	"github.com/reeferdlq/reefer-dlq/pkg/testkit/pgtest"
)

// everyRow is the key of every figure a full set of cases reports.
var everyRow = []string{
	"1-produce", "1", "2-db", "2-db-single", "2-inv", "3", "3-traced", "4-503", "4-hang", "4-hang-notrip",
	"5a-503", "5a-hang", "5b-503", "5b-hang",
	"6-retry", "6-sched", "6-pause", "7-fast", "7-rate",
	"8-healthy-reefer-manager", "8-healthy-order-retry", "8-healthy-container-inventory-mock",
	"8-503-reefer-manager", "8-503-order-retry", "8-503-container-inventory-mock",
	"8-hang-reefer-manager", "8-hang-order-retry", "8-hang-container-inventory-mock",
	"8-pending-1x", "8-pending-4x",
	"9-suite-healthy", "9-suite-flaky", "9-suite-outage",
	"9-share-healthy", "9-share-flaky", "9-share-outage", "9-share-outage-nobreaker",
}

// TestQuickRunMeasuresEveryCase runs the whole program with --quick, as
// `make bench` runs it but small: every case must run and report each of
// its figures with its parameters, ratios and goals evaluated, and the
// table, JSON, Markdown and chart must be written. It checks that the
// program works, not the numbers (a smoke run on a busy machine proves
// nothing about them): --quick gives healthy inventory calls a generous
// timeout, and counts a call that exceeds it anyway instead of failing.
// A case that cannot run or concludes the wrong way still fails it.
func TestQuickRunMeasuresEveryCase(t *testing.T) {
	dsn := pgtest.Start(t) // needs Docker; skipped with -short, as every integration test
	out := t.TempDir()
	var stdout, stderr bytes.Buffer
	if err := run(t.Context(), []string{"--quick", "--postgres", dsn, "--out", out}, &stdout, &stderr); err != nil {
		t.Fatalf("bench --quick: %v\nstderr:\n%s", err, stderr.String())
	}

	data, err := os.ReadFile(filepath.Join(out, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	var res report.Run
	if err := json.Unmarshal(data, &res); err != nil {
		t.Fatalf("results.json: %v", err)
	}
	if len(res.Failures) > 0 {
		t.Errorf("failed cases: %v", res.Failures)
	}
	var keys []string
	for _, row := range res.Rows {
		keys = append(keys, row.Key)
	}
	if diff := cmp.Diff(everyRow, keys); diff != "" {
		t.Errorf("rows reported (-want +got):\n%s", diff)
	}
	if !res.Quick || res.Machine.Cores < 1 || res.Machine.UptimeBefore == "" || res.Machine.UptimeAfter == "" || len(res.Setup) == 0 {
		t.Errorf("run description incomplete: quick=%v machine=%+v setup=%d lines", res.Quick, res.Machine, len(res.Setup))
	}

	// A call the loaded machine held past the timeout is counted, not
	// fatal (see caseDependencies): say so, so a slow run is visible.
	if row, ok := res.Row("2-inv"); ok && row.Metrics["timeouts"] > 0 {
		t.Logf("row 2-inv: %v inventory calls timed out (slowest %v ms): the machine was busy", row.Metrics["timeouts"], row.Metrics["slowest_call_ms"])
	}
	for _, row := range res.Rows {
		if row.Name == "" || row.Params == "" || row.Unit == "" {
			t.Errorf("row %s does not say what it measured: name %q, params %q, unit %q", row.Key, row.Name, row.Params, row.Unit)
		}
		if math.IsNaN(row.Value) || math.IsInf(row.Value, 0) || row.Value < 0 {
			t.Errorf("row %s: value %v", row.Key, row.Value)
		}
		// The baselines may conclude nothing within a quick window; every
		// other figure is a positive rate, duration or size.
		if row.Value == 0 && row.Case != "5" {
			t.Errorf("row %s: value 0 %s: nothing was measured", row.Key, row.Unit)
		}
		if (len(row.RatioTo) > 0 || row.RatioTarget != 0) && row.Ratio == nil {
			t.Errorf("row %s: ratio to %v not computed", row.Key, row.RatioTo)
		}
		for _, g := range row.Goals {
			if g.Met == nil {
				t.Errorf("row %s: goal %s not evaluated", row.Key, g)
			}
		}
	}
	for _, key := range []string{"6-retry", "6-sched", "6-pause"} {
		row, _ := res.Row(key)
		if got := row.Metrics["records"]; got != 200 {
			t.Errorf("row %s: lateness of %v retries, want 200", key, got)
		}
		for _, m := range []string{"p50_ms", "p99_ms", "max_ms", "early"} {
			if _, ok := row.Metrics[m]; !ok {
				t.Errorf("row %s: no %s", key, m)
			}
		}
	}

	checkShareGroupRows(t, &res)

	md, err := os.ReadFile(filepath.Join(out, "results.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range append([]string{"| key | measured | value |", "Load before:"}, everyRow...) {
		if !strings.Contains(string(md), want) {
			t.Errorf("results.md lacks %q", want)
		}
	}
	if table := stdout.String(); !strings.Contains(table, "key") || !strings.Contains(table, "6-pause") {
		t.Errorf("no table on stdout:\n%s", table)
	}
	f, err := os.Open(filepath.Join(out, "chart.png"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("chart.png: %v", err)
	}
	if b := img.Bounds(); b.Dx() < 800 || b.Dy() < 600 {
		t.Errorf("chart.png is %v, want a readable figure", b)
	}
}

// checkShareGroupRows checks that case 9 measured what its comparison
// needs, and that the figures hold together: counts within what was
// produced, ratios where a row refers to its healthy run. Speeds are not
// checked; a smoke run on a busy machine says nothing about them.
func checkShareGroupRows(t *testing.T, res *report.Run) {
	t.Helper()
	for _, key := range []string{"9-suite-flaky", "9-share-flaky"} {
		row, _ := res.Row(key)
		for _, m := range []string{"retries", "retry_gap_p50_ms", "retry_gap_p99_ms", "early_retries", "key_pairs", "ordering_violations", "first_attempt_order_violations", "dead_letters"} {
			if _, ok := row.Metrics[m]; !ok {
				t.Errorf("row %s: no %s", key, m)
			}
		}
		pairs := row.Metrics["key_pairs"]
		if pairs <= 0 || row.Metrics["retries"] <= 0 || row.Metrics["retry_gap_p50_ms"] <= 0 {
			t.Errorf("row %s: %v key pairs, %v retries, first-retry gap p50 %v ms: the flaky inventory was not measured", key, pairs, row.Metrics["retries"], row.Metrics["retry_gap_p50_ms"])
		}
		if v := row.Metrics["ordering_violations"]; v < 0 || v > pairs {
			t.Errorf("row %s: %v ordering violations among %v pairs", key, v, pairs)
		}
		if row.Metrics["orders_without_inventory_call"] != 0 {
			t.Errorf("row %s: %v orders never reached the inventory", key, row.Metrics["orders_without_inventory_call"])
		}
	}
	if row, _ := res.Row("9-suite-flaky"); row.Metrics["lateness_p50_ms"] == 0 && row.Metrics["lateness_p99_ms"] == 0 {
		t.Errorf("row 9-suite-flaky: no lateness against x-retry-due-at")
	}
	for _, key := range []string{"9-suite-outage", "9-share-outage", "9-share-outage-nobreaker"} {
		row, _ := res.Row(key)
		for _, m := range []string{"inventory_calls_per_s", "failed_attempts_per_s", "to_dead_letter_p50_ms", "dead_letters", "recovery_dead_letters", "outage_s", "failed_attempts_peak_per_s", "failed_attempts_90pct_s"} {
			if _, ok := row.Metrics[m]; !ok {
				t.Errorf("row %s: no %s", key, m)
			}
		}
		if row.Ratio == nil || *row.Ratio <= 0 {
			t.Errorf("row %s: no input ratio to its healthy run", key)
		}
		if row.Metrics["failed_attempts_per_s"] <= 0 {
			t.Errorf("row %s: no failed attempt while the inventory was down", key)
		}
	}
	// The share group spends its whole delivery budget within the outage:
	// every order is dead-lettered, with the consumer's headers.
	for _, key := range []string{"9-share-outage", "9-share-outage-nobreaker"} {
		row, _ := res.Row(key)
		if row.Metrics["dead_letters"] != 200 || row.Metrics["to_dead_letter_p50_ms"] <= 0 || !strings.Contains(row.Note, "_dlq.errors.disposition") {
			t.Errorf("row %s: %v dead letters (want 200), p50 %v ms to the dead letter, note %q", key, row.Metrics["dead_letters"], row.Metrics["to_dead_letter_p50_ms"], row.Note)
		}
	}
}

func TestFlagsRejectBadValues(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown case", []string{"--cases", "3,10"}, `unknown case "10"`},
		{"no case", []string{"--cases", ","}, "selects nothing"},
		{"negative orders", []string{"--orders", "-5"}, "--orders -5"},
		{"argument", []string{"3"}, `unexpected argument "3"`},
		{"empty out", []string{"--out", ""}, "--out is empty"},
		{"unknown flag", []string{"--fast"}, "flag provided but not defined"},
		{"service env without a value", []string{"--service-env", "GOMEMLIMIT"}, "want NAME=VALUE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			_, err := parseParams(tt.args, &stderr)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("parseParams(%q) = %v, want an error containing %q", tt.args, err, tt.want)
			}
		})
	}
}

func TestFlagsSelectCasesInRunOrder(t *testing.T) {
	p, err := parseParams([]string{"--cases", "8, 3,3,1", "--quick"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"1", "3", "8"}, p.cases); diff != "" {
		t.Errorf("cases (-want +got):\n%s", diff)
	}
	if p.orders != 200 || p.retries != 200 {
		t.Errorf("--quick sizes: orders %d, retries %d", p.orders, p.retries)
	}
	full, err := parseParams(nil, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(full.cases, allCases) || full.orders != 20000 || full.retries != 10000 {
		t.Errorf("defaults: cases %v, orders %d, retries %d", full.cases, full.orders, full.retries)
	}
}
