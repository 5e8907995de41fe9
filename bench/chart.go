package main

import (
	"fmt"
	"math"
	"strings"

	"github.com/reeferdlq/reefer-dlq/bench/report"
)

// chartTitle names the run on the chart.
func chartTitle(r *report.Run) string {
	quick := ""
	if r.Quick {
		quick = " (--quick: smoke run)"
	}
	return fmt.Sprintf("reefer-dlq bench, %s, %d cores%s", r.Started.UTC().Format("2006-01-02 15:04 UTC"), r.Machine.Cores, quick)
}

// panels lays the results out for the chart: one panel per claim.
func panels(r *report.Run) []report.Panel {
	value := func(key string) float64 {
		row, ok := r.Row(key)
		if !ok {
			return math.NaN()
		}
		return row.Value
	}
	ratio := func(key string) float64 {
		row, ok := r.Row(key)
		if !ok || row.Ratio == nil {
			return math.NaN()
		}
		return *row.Ratio
	}
	metric := func(key, name string) float64 {
		row, ok := r.Row(key)
		if !ok {
			return math.NaN()
		}
		v, ok := row.Metrics[name]
		if !ok {
			return math.NaN()
		}
		return v
	}
	values := func(f func(string) float64, keys ...string) []float64 {
		out := make([]float64, len(keys))
		for i, k := range keys {
			out[i] = f(k)
		}
		return out
	}

	var ps []report.Panel
	ps = append(ps, report.Panel{
		Title:  "Limits and reefer-manager (cases 1-4)",
		YLabel: "orders/s (calls/s for the dependencies)",
		Groups: []string{"1 pipe", "2 DB batch", "2 DB single", "2 inventory", "3 healthy", "4 inv. 503", "4 inv. hang", "4 hang, no trip"},
		Series: []report.Series{{Values: values(value, "1", "2-db", "2-db-single", "2-inv", "3", "4-503", "4-hang", "4-hang-notrip")}},
		Lines:  []report.Line{{Label: "goal case 3: 5,000/s", Y: 5000}},
	})
	ps = append(ps, report.Panel{
		Title:    "Input rate with the inventory down ÷ healthy (cases 4, 5)",
		YLabel:   "ratio to case 3 (log)",
		LogY:     true,
		LogFloor: 1e-5,
		Groups:   []string{"reefer-manager", "sleep attempt×delay", "watermill Retry"},
		Series: []report.Series{
			{Name: "inventory 503", Values: values(ratio, "4-503", "5a-503", "5b-503")},
			{Name: "inventory hang", Values: values(ratio, "4-hang", "5a-hang", "5b-hang")},
		},
		Lines: []report.Line{{Label: "goal pattern ≥ 0.9", Y: 0.9}, {Label: "baselines < 0.1", Y: 0.1}},
	})
	lateKeys := []string{"6-retry", "6-sched", "6-pause"}
	ps = append(ps, report.Panel{
		Title:      "Retry lateness (case 6)",
		LegendLeft: true,
		YLabel:     "ms after the due time (log)",
		LogY:       true,
		Groups:     []string{"order-retry", "pkg/kafkaretry/scheduler", "pause until head is due"},
		Series: []report.Series{
			{Name: "p50", Values: values(func(k string) float64 { return metric(k, "p50_ms") }, lateKeys...)},
			{Name: "p99", Values: values(func(k string) float64 { return metric(k, "p99_ms") }, lateKeys...)},
			{Name: "max", Values: values(func(k string) float64 { return metric(k, "max_ms") }, lateKeys...)},
		},
		Lines: []report.Line{{Label: "goal p99 ≤ 50 ms", Y: 50}},
	})
	scen := []string{"healthy", "503", "hang"}
	svcSeries := func(svc string) []float64 {
		out := values(func(s string) float64 { return value("8-" + s + "-" + svc) }, scen...)
		if svc == "order-retry" {
			return append(out, value("8-pending-1x"), value(pendingKey(r)))
		}
		return append(out, math.NaN(), math.NaN())
	}
	ps = append(ps, report.Panel{
		Title:  "Peak RSS per service, separate processes (case 8)",
		YLabel: "MiB",
		Groups: []string{"healthy", "inv. 503", "inv. hang", "MAX_PENDING held", strings.TrimPrefix(pendingKey(r), "8-pending-") + " backlog"},
		Series: []report.Series{
			{Name: "reefer-manager", Values: svcSeries("reefer-manager")},
			{Name: "order-retry", Values: svcSeries("order-retry")},
			{Name: "inventory mock", Values: svcSeries("container-inventory-mock")},
		},
		Lines: []report.Line{{Label: "goal 64 MiB", Y: memoryGoalMiB}},
	})
	sides := []string{"9-suite", "9-share", "9-share"}
	outageKeys := []string{"9-suite-outage", "9-share-outage", "9-share-outage-nobreaker"}
	sideNames := []string{"retry topics (the suite)", "share group", "share group, no breaker"}
	var stormSeries, timingSeries []report.Series
	for i, name := range sideNames {
		stormSeries = append(stormSeries, report.Series{Name: name, Values: []float64{
			metric(outageKeys[i], "failed_attempts_per_s"), metric(outageKeys[i], "failed_attempts_peak_per_s"), metric(outageKeys[i], "inventory_calls_per_s"),
		}})
		gap := metric(sides[i]+"-flaky", "retry_gap_p50_ms")
		if i == 2 {
			gap = math.NaN() // the flaky run is not repeated without the breaker
		}
		timingSeries = append(timingSeries, report.Series{Name: name, Values: []float64{
			gap, metric(outageKeys[i], "to_dead_letter_p50_ms"),
		}})
	}
	ps = append(ps, report.Panel{
		Title:      "Inventory down (case 9): the retry storm",
		YLabel:     "per second (log)",
		LogY:       true,
		LegendLeft: true,
		Groups:     []string{"failed attempts/s, mean", "failed attempts/s, peak second", "inventory calls/s, mean"},
		Series:     stormSeries,
	})
	ps = append(ps, report.Panel{
		Title:      "Retry topics or share groups (case 9): timing",
		YLabel:     "ms (log)",
		LogY:       true,
		LegendLeft: true,
		Groups:     []string{"first retry after a failure, p50 (flaky)", "first failure → dead letter, p50 (outage)"},
		Series:     timingSeries,
		Lines:      []report.Line{{Label: "intended first retry (back-off 1 s)", Y: 1000}},
	})
	ps = append(ps, report.Panel{
		Title:    "dlq redrive (case 7)",
		YLabel:   "records/s (log)",
		LogY:     true,
		LogFloor: 1,
		Groups:   []string{"unthrottled", "--rate 1000"},
		Series:   []report.Series{{Values: values(value, "7-fast", "7-rate")}},
		Lines:    []report.Line{{Label: "goal unthrottled ≥ 20,000/s", Y: 20000}, {Label: "asked rate 1,000/s", Y: 1000}},
	})
	return ps
}

// pendingKey is the key of the larger-backlog run of case 8.
func pendingKey(r *report.Run) string {
	for _, row := range r.Rows {
		if strings.HasPrefix(row.Key, "8-pending-") && row.Key != "8-pending-1x" {
			return row.Key
		}
	}
	return "8-pending-4x"
}
