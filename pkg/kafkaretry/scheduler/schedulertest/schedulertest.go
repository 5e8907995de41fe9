// Package schedulertest holds what the due-time benchmarks share: the
// scheduler's own (package scheduler) and order-retry's end to end. Both
// read their sizes from the environment and report how late each record
// started against its due time, in the same units, so that their numbers
// can be compared line by line.
package schedulertest

import (
	"os"
	"slices"
	"strconv"
	"testing"
	"time"
)

// ReportLateness reports the p50, p99 and largest lateness in
// milliseconds, and how many records started before their due time
// (early; the scheduler promises none), on b. It sorts lateness.
func ReportLateness(b *testing.B, lateness []time.Duration, early int) {
	b.Helper()
	if len(lateness) == 0 {
		b.Fatal("no lateness measured: no record was released")
	}
	slices.Sort(lateness)
	pct := func(p float64) float64 {
		return float64(lateness[int(p*float64(len(lateness)-1))]) / float64(time.Millisecond)
	}
	b.ReportMetric(pct(0.50), "lateness-p50-ms")
	b.ReportMetric(pct(0.99), "lateness-p99-ms")
	b.ReportMetric(pct(1), "lateness-max-ms")
	b.ReportMetric(float64(early), "early-runs")
}

// MinDelay is the shortest delay the benchmarks give a record.
const MinDelay = 100 * time.Millisecond

// Workload reads a lateness benchmark's size from the environment:
// prefix+"RECORDS" records (default records) with delays spread uniformly
// over MinDelay to prefix+"MAX_DELAY" (default maxDelay), which must be
// above MinDelay.
func Workload(b *testing.B, prefix string, records int, maxDelay time.Duration) (int, time.Duration) {
	b.Helper()
	records = EnvInt(b, prefix+"RECORDS", records)
	maxDelay = EnvDuration(b, prefix+"MAX_DELAY", maxDelay)
	if maxDelay <= MinDelay {
		b.Fatalf("%sMAX_DELAY %v: want more than the shortest delay, %v", prefix, maxDelay, MinDelay)
	}
	return records, maxDelay
}

// EnvInt is the positive whole number in the variable name, or def when
// it is unset; anything else fails the benchmark naming the variable.
func EnvInt(tb testing.TB, name string, def int) int {
	tb.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		tb.Fatalf("%s=%q: want a positive whole number", name, v)
	}
	return n
}

// EnvDuration is the positive Go duration in the variable name, or def
// when it is unset; anything else fails the benchmark naming the variable.
func EnvDuration(tb testing.TB, name string, def time.Duration) time.Duration {
	tb.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		tb.Fatalf("%s=%q: want a positive Go duration such as 5s", name, v)
	}
	return d
}
